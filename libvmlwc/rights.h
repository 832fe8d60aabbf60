/* Rights of lwC descriptors (rights.c). */
#ifndef VMLWC_RIGHTS_H
#define VMLWC_RIGHTS_H

#include "base.h"

struct spec_set;
void rights_aux_ref(uint32_t aux, int delta); /* fdtab hook */
unsigned rights_syscall(unsigned mask);       /* the rights lwc_syscall needs for a mask */
int rights_for_creator(const struct spec_set *ss, int *rights, uint32_t *aux); /* 0 or -errno */
int rights_restrict(int old, uint32_t old_aux, const struct spec_set *ss, int *rights, uint32_t *aux); /* 0 or -errno */
int rights_may_overlay(int rights, uint32_t aux, const struct spec_set *ss); /* 0 or -EPERM */
void rights_aux_unused(uint32_t aux);         /* free a set no entry took */

#endif
