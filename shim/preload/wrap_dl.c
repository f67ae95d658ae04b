/*
 * dlclose, counted (ac_unload_gen) before the real one may unmap the object: a call site met in
 * it before then is written `unknown`, never named in whatever the loader maps at its address
 * later (sites.c). glibc only: musl's dlclose never unmaps an object, so nothing to count.
 */
#include "autoclose.h"

#include <dlfcn.h>

#if AC_GLIBC
AC_EXPORT int dlclose(void *handle)
{
    __atomic_add_fetch(&ac_unload_gen, 1, __ATOMIC_RELAXED);
    return AC_REAL(dlclose)(handle);
}
#endif
