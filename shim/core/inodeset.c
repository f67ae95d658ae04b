/*
 * A sorted set of socket inodes, stored compactly: the gaps between neighbours, each in as few
 * bytes as it needs (7 bits a byte, the top bit saying "more follows").
 *
 * The sweep keeps one between sweeps: every socket in CLOSE_WAIT on the host at the last sweep,
 * its own and other processes' alike, so that none is looked for twice. On a host where
 * 50,000 sockets sit in CLOSE_WAIT, every process under the library keeps that list; as plain
 * 32-bit inodes it cost 4 bytes a socket (more, with a doubling array's slack), counted against
 * each connection the process tracks. The kernel hands out inode numbers in sequence, so the
 * gaps of a sorted list are small: about one byte a socket.
 *
 * Read front to back only, with a cursor: the sweep walks its own sorted list beside it.
 */
#include "core.h"

#include <sys/mman.h>

#define MAX_BYTES_PER_INODE 5 /* 32 bits, 7 to a byte */

static size_t encoded_size(uint32_t gap)
{
    size_t n = 1;
    while (gap >= 0x80) {
        gap >>= 7;
        n++;
    }
    return n;
}

static uint8_t *encode(uint8_t *out, uint32_t gap)
{
    while (gap >= 0x80) {
        *out++ = (uint8_t)(gap | 0x80);
        gap >>= 7;
    }
    *out++ = (uint8_t)gap;
    return out;
}

void ac_inode_set_clear(struct ac_inode_set *set)
{
    if (set->bytes != NULL)
        munmap(set->bytes, set->mapped);
    *set = (struct ac_inode_set){0};
}

bool ac_inode_set_assign(struct ac_inode_set *set, const uint32_t *v, size_t n)
{
    ac_inode_set_clear(set);
    size_t need = 0;
    uint32_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        need += encoded_size(v[i] - prev);
        prev = v[i];
    }
    if (need == 0)
        return true;
    size_t mapped = (need + 4095u) & ~(size_t)4095u;
    void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    uint8_t *out = p;
    prev = 0;
    for (size_t i = 0; i < n; i++) {
        out = encode(out, v[i] - prev);
        prev = v[i];
    }
    *set = (struct ac_inode_set){.bytes = p, .len = need, .mapped = mapped, .count = n};
    return true;
}

/* Decodes the next member into c->at; false at the end (or on bytes that do not decode). */
static bool advance(struct ac_inode_cursor *c)
{
    uint32_t gap = 0;
    for (unsigned shift = 0; c->p < c->end && shift < 7 * MAX_BYTES_PER_INODE; shift += 7) {
        uint8_t b = *c->p++;
        gap |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            c->at += gap;
            return true;
        }
    }
    c->p = c->end;
    return false;
}

void ac_inode_cursor_start(struct ac_inode_cursor *c, const struct ac_inode_set *set)
{
    c->p = set->bytes;
    c->end = set->bytes ? set->bytes + set->len : NULL;
    c->at = 0;
    c->valid = c->p != NULL && advance(c);
}

bool ac_inode_cursor_has(struct ac_inode_cursor *c, uint32_t ino)
{
    while (c->valid && c->at < ino)
        c->valid = advance(c);
    return c->valid && c->at == ino;
}
