/* Redirected syscalls: fs family (placeholder until written). */
#include "sys.h"

void sys_fs_register(void)
{
}
