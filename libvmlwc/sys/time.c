/* Redirected syscalls: time family (placeholder until written). */
#include "sys.h"

void sys_time_register(void)
{
}
