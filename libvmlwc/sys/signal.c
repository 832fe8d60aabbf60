/* Redirected syscalls: signal family (placeholder). */
#include "sys.h"

void sys_signal_register(void)
{
}

void sig_init(void)
{
}
