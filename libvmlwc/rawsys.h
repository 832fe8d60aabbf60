/* Raw x86-64 Linux syscalls returning -errno: the only way host-side exit paths call the kernel. */
#ifndef VMLWC_RAWSYS_H
#define VMLWC_RAWSYS_H

#include <sys/syscall.h>

static inline long raw_syscall6(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	long ret;
	register long r10 __asm__("r10") = a3;
	register long r8 __asm__("r8") = a4;
	register long r9 __asm__("r9") = a5;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define RAW0(nr) raw_syscall6((nr), 0, 0, 0, 0, 0, 0)
#define RAW1(nr, a) raw_syscall6((nr), (long)(a), 0, 0, 0, 0, 0)
#define RAW2(nr, a, b) raw_syscall6((nr), (long)(a), (long)(b), 0, 0, 0, 0)
#define RAW3(nr, a, b, c) raw_syscall6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RAW4(nr, a, b, c, d) raw_syscall6((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define RAW5(nr, a, b, c, d, e) \
	raw_syscall6((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define RAW6(nr, a, b, c, d, e, f) \
	raw_syscall6((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

#endif
