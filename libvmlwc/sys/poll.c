/* Redirected syscalls: poll family (placeholder until written). */
#include "sys.h"

void sys_poll_register(void)
{
}
