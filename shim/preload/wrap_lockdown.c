/*
 * A program that locks itself down after start-up: it installs a seccomp filter (init, then an
 * allow-list of what its own loop needs), through prctl(PR_SET_SECCOMP) or the seccomp system
 * call, as libseccomp's seccomp_load does. From then on any system call the library makes that
 * the program does not may kill it (SIGSYS), and a thread can no longer be started.
 *
 * So the library gets ready while it still may, just before the filter goes in: if the process
 * has a TCP socket (a listener, a connection) its timer thread starts now, so that the filter
 * (installed for the calling thread and the threads it starts later) never applies to it, and
 * from then on no thread is started. A filter for every thread (SECCOMP_FILTER_FLAG_TSYNC) or
 * strict mode would reach the timer too: the library then stops it and goes inert. Either way
 * the one line that says so is written before the filter, while writing is still allowed.
 *
 * The wrappers' own cost: one comparison of the option; for syscall(), saving and restoring its
 * argument registers around one call.
 */
#include "autoclose.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC (1UL << 0)
#endif

/* Returns whether anything was done that a refused filter undoes. */
static __attribute__((noinline, cold)) bool locking_down(bool every_thread)
{
    /* A vfork child's filter is its own, in the memory it shares with this process. */
    if (!__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE) || ac_in_other_process())
        return false;
    int saved_errno = errno;
    bool have_tcp = !every_thread && ac_sweep_inherited_tcp();
    bool running = ac_timer_lockdown(have_tcp, every_thread);
    if (every_thread) {
        __atomic_store_n(&ac_active, false, __ATOMIC_RELEASE);
        ac_log(AC_LOG_ERROR, "off: the program installs a seccomp filter for every thread (or "
                             "strict mode), which the library's own thread could not live under; "
                             "its connections are no longer reclaimed");
    } else if (!running) {
        ac_log(AC_LOG_DEBUG, "the program installs a seccomp filter before any TCP connection: "
                             "no thread can be started under it, connections it makes later are "
                             "not reclaimed");
    } else {
        ac_log(AC_LOG_DEBUG, "the program installs a seccomp filter: the library's thread runs "
                             "outside it, and no other will be started");
    }
    errno = saved_errno;
    return true;
}

/* The kernel refused the filter (no PR_SET_NO_NEW_PRIVS and no CAP_SYS_ADMIN, say): nothing is
 * locked down, and the library goes on as before. */
static __attribute__((noinline, cold)) void lockdown_refused(void)
{
    int saved_errno = errno;
    __atomic_store_n(&ac_active, true, __ATOMIC_RELEASE);
    ac_timer_lockdown_undone();
    char line[160];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "the program's seccomp filter was refused (");
    ac_text_str(&t, strerrordesc_np(saved_errno) ? strerrordesc_np(saved_errno) : "error");
    ac_text_str(&t, "): the library goes on as before");
    ac_log(AC_LOG_DEBUG, line);
    errno = saved_errno;
}

AC_EXPORT int prctl(int option, ...)
{
    /* Every prctl argument is one word: pass the four on as they came, as glibc reads them. */
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    /* Strict mode, or a filter with a program (a null one is only a probe that fails). */
    bool locked = AC_UNLIKELY(option == PR_SET_SECCOMP) &&
                  (a2 == SECCOMP_MODE_STRICT || (a2 == SECCOMP_MODE_FILTER && a3 != 0)) &&
                  locking_down(a2 == SECCOMP_MODE_STRICT);
    int r = AC_REAL(prctl)(option, a2, a3, a4, a5);
    if (AC_UNLIKELY(locked) && r != 0)
        lockdown_refused();
    return r;
}

/* seccomp(2) installing a filter or strict mode, called through syscall(): the library gets
 * ready first, and undoes it if the kernel refuses. */
static long seccomp_call(long number, long op, long flags, long args)
{
    bool locked = locking_down(op == SECCOMP_SET_MODE_STRICT ||
                               ((unsigned long)flags & SECCOMP_FILTER_FLAG_TSYNC) != 0);
    long r = AC_REAL(syscall)(number, op, flags, args);
    if (locked && r < 0)
        lockdown_refused();
    return r;
}

/* syscall() takes up to six arguments, and a C wrapper would read all six whatever the caller
 * passed (beyond the registers, from the caller's stack). So the wrapper is a few lines of
 * assembly per architecture that leave every argument where it is: they save the registers,
 * hand the system call's number and first three arguments to syscall_prepare, restore them and
 * jump to what it returns: libc's syscall, or for seccomp(2) seccomp_call. */
__attribute__((used)) static void *syscall_prepare(long number, long a1, long a2, long a3)
{
    /* Only a call that can succeed: libseccomp probes the system call and its flags first with
     * calls the kernel refuses (strict mode with flags, a filter without a program). */
    ac_real_resolve();
    if (AC_UNLIKELY(number == SYS_seccomp) &&
        ((a1 == SECCOMP_SET_MODE_STRICT && a2 == 0 && a3 == 0) ||
         (a1 == SECCOMP_SET_MODE_FILTER && a3 != 0)))
        return (void *)seccomp_call; /* its four arguments are all seccomp(2) takes */
    return (void *)ac_real.syscall;
}
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl syscall\n"
        ".type syscall, @function\n"
        "syscall:\n"
        "    pushq %rdi\n"
        "    pushq %rsi\n"
        "    pushq %rdx\n"
        "    pushq %rcx\n"
        "    pushq %r8\n"
        "    pushq %r9\n"
        "    subq $8, %rsp\n"
        "    call syscall_prepare\n"
        "    addq $8, %rsp\n"
        "    popq %r9\n"
        "    popq %r8\n"
        "    popq %rcx\n"
        "    popq %rdx\n"
        "    popq %rsi\n"
        "    popq %rdi\n"
        "    jmp *%rax\n"
        ".size syscall, .-syscall\n");
#elif defined(__i386__)
__asm__(".text\n"
        ".globl syscall\n"
        ".type syscall, @function\n"
        "syscall:\n"
        "    subl $12, %esp\n"
        "    pushl 28(%esp)\n" /* the third argument */
        "    pushl 28(%esp)\n" /* the second */
        "    pushl 28(%esp)\n" /* the first */
        "    pushl 28(%esp)\n" /* the number */
        "    call syscall_prepare\n"
        "    addl $28, %esp\n"
        "    jmp *%eax\n"
        ".size syscall, .-syscall\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl syscall\n"
        ".type syscall, %function\n"
        "syscall:\n"
        "    stp x29, x30, [sp, #-80]!\n"
        "    stp x0, x1, [sp, #16]\n"
        "    stp x2, x3, [sp, #32]\n"
        "    stp x4, x5, [sp, #48]\n"
        "    stp x6, x7, [sp, #64]\n"
        "    bl syscall_prepare\n"
        "    mov x16, x0\n"
        "    ldp x0, x1, [sp, #16]\n"
        "    ldp x2, x3, [sp, #32]\n"
        "    ldp x4, x5, [sp, #48]\n"
        "    ldp x6, x7, [sp, #64]\n"
        "    ldp x29, x30, [sp], #80\n"
        "    br x16\n"
        ".size syscall, .-syscall\n");
#else
/* No wrapper here: a filter installed through syscall() is then not seen (README). */
#endif
