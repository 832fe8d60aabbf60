/* Redirected syscalls: net family (placeholder until written). */
#include "sys.h"

void sys_net_register(void)
{
}
