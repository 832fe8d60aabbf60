/* The library's private syscalls: vmlwc_stats, internal counts, test hooks (stats.c). */
#ifndef VMLWC_STATS_H
#define VMLWC_STATS_H

#include "base.h"

void stats_init(void);                 /* the library's private syscalls (vmlwc_stats, counts, hooks); never fails */

#endif
