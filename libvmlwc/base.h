/* Types and constants every host file of libvmlwc uses: guest addresses, pages. */
#ifndef VMLWC_BASE_H
#define VMLWC_BASE_H

#include <stddef.h>
#include <stdint.h>
#include "vmlwc.h"
#include "vmlwc_abi.h"

/* Guest addresses are plain integers so the host cannot dereference one by accident. */
typedef uint64_t gva_t;
typedef uint64_t gpa_t;
#define GPA_NONE ((gpa_t)-1)

#define PAGE_SIZE 4096UL
#define PAGE_ALIGN_DOWN(x) ((uint64_t)(x) & ~(PAGE_SIZE - 1))
#define PAGE_ALIGN_UP(x) (((uint64_t)(x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
#define USER_TOP 0x7ffffffff000UL /* first address above the last user page */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
