/*
 * pthread_create: the moment the application stops being single-threaded. Until then the
 * wrappers may make the cancellable system calls themselves (real.c); from here on, glibc's
 * functions again, installed before the new thread can make its first call.
 */
#include "autoclose.h"

AC_EXPORT int pthread_create(pthread_t *restrict thread, const pthread_attr_t *restrict attr,
                             void *(*start)(void *), void *restrict arg)
{
    ac_real_app_thread_starting();
    return ac_real_pthread_create(thread, attr, start, arg);
}
