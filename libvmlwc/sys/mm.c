/* Redirected syscalls: mm family (placeholder). */
#include "sys.h"

void sys_mm_register(void)
{
}
