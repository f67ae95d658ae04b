/*
 * Starting other processes. Each may inherit every socket open now, so each bumps the spawn
 * epoch first (lifetime.c): from then on those sockets are only ever released, never shut down,
 * and a child that serves one keeps it.
 *
 * fork and _Fork also give the child a shim of its own: fresh locks and counters (init.c), and
 * a timer of its own, started once fork has returned, never inside it: a thread made while the
 * fork handlers of other libraries (an allocator's, a sanitizer's) are half done can deadlock.
 * vfork and clone with CLONE_VM run a child in this process's memory: the wrappers then check
 * which process they are in before they change anything (ac_in_other_process).
 */
#include "autoclose.h"

#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t fork_impl(void)
{
    /* The prepare handler (init.c) bumps the epoch: fork made without this wrapper counts too. */
    pid_t pid = AC_REAL(fork)();
    if (pid == 0)
        ac_timer_after_fork();
    return pid;
}
AC_EXPORT pid_t fork(void) __attribute__((alias("fork_impl")));

/* _Fork runs no fork handlers, so the child's reset is done here; no timer is started (_Fork
 * may be called from a signal handler). */
AC_EXPORT pid_t _Fork(void)
{
    ac_process_spawning();
    pid_t pid = AC_REAL(Fork)();
    if (pid == 0)
        ac_after_fork_child(false);
    return pid;
}

/* vfork's child returns through the caller's stack frame, so the wrapper cannot be a C function
 * that calls vfork: it is a jump, after a call that notes the child and finds the real vfork. */
/* From the first child that shares this process's memory on, wrappers tell the two apart by
 * the pid: known from here on (a forked child leaves it unknown until then). */
static void vm_shared_child_coming(void)
{
    if (__atomic_load_n(&ac_pid, __ATOMIC_RELAXED) == 0)
        __atomic_store_n(&ac_pid, (pid_t)syscall(SYS_getpid), __ATOMIC_RELAXED);
    __atomic_store_n(&ac_vm_shared_child_seen, true, __ATOMIC_RELAXED);
}

__attribute__((used)) static void *vfork_prepare(void)
{
    ac_process_spawning();
    vm_shared_child_coming();
    ac_real_resolve();
    return (void *)ac_real.vfork;
}
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        "vfork:\n"
        "    subq $8, %rsp\n"
        "    call vfork_prepare\n"
        "    addq $8, %rsp\n"
        "    jmp *%rax\n"
        ".size vfork, .-vfork\n");
#elif defined(__i386__)
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        "vfork:\n"
        "    subl $12, %esp\n"
        "    call vfork_prepare\n"
        "    addl $12, %esp\n"
        "    jmp *%eax\n"
        ".size vfork, .-vfork\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, %function\n"
        "vfork:\n"
        "    stp x29, x30, [sp, #-16]!\n"
        "    bl vfork_prepare\n"
        "    ldp x29, x30, [sp], #16\n"
        "    br x0\n"
        ".size vfork, .-vfork\n");
#else
/* No wrapper here: the build must not fail on an architecture without the few lines above. A
 * vfork child's closes are then told apart only once a clone with CLONE_VM has been seen. */
#endif

/* glibc's clone: the three optional arguments are passed on as they came (it reads them only
 * when the flags ask for them). */
AC_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    void *parent_tid = va_arg(ap, void *);
    void *tls = va_arg(ap, void *);
    void *child_tid = va_arg(ap, void *);
    va_end(ap);
    if (!(flags & CLONE_THREAD)) {
        ac_process_spawning();
        if (flags & CLONE_VM)
            vm_shared_child_coming();
    }
    return AC_REAL(clone)(fn, stack, flags, arg, parent_tid, tls, child_tid);
}

AC_EXPORT int posix_spawn(pid_t *restrict pid, const char *restrict path,
                          const posix_spawn_file_actions_t *actions,
                          const posix_spawnattr_t *restrict attr, char *const argv[restrict],
                          char *const envp[restrict])
{
    ac_process_spawning();
    return AC_REAL(posix_spawn)(pid, path, actions, attr, argv, envp);
}

AC_EXPORT int posix_spawnp(pid_t *restrict pid, const char *restrict file,
                           const posix_spawn_file_actions_t *actions,
                           const posix_spawnattr_t *restrict attr, char *const argv[restrict],
                           char *const envp[restrict])
{
    ac_process_spawning();
    return AC_REAL(posix_spawnp)(pid, file, actions, attr, argv, envp);
}

AC_EXPORT int system(const char *command)
{
    ac_process_spawning();
    return AC_REAL(system)(command);
}

AC_EXPORT FILE *popen(const char *command, const char *type)
{
    ac_process_spawning();
    return AC_REAL(popen)(command, type);
}
