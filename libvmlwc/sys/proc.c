/* Redirected syscalls: proc family (placeholder). */
#include "sys.h"

void sys_proc_register(void)
{
}
