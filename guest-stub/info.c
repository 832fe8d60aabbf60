/* Stub identity: the ABI version the host checks before using the image. */
#include "vmlwc_abi.h"

__attribute__((used, section(".rodata")))
const unsigned int vmlwc_stub_abi_version = VMLWC_ABI_VERSION;
