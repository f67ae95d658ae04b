/* The one clock the shim's deadlines use: monotonic, so a wall-clock step cannot fire (or
 * postpone) every pending action at once. */
#include "core.h"

#include <time.h>

uint64_t ac_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
