/* fuzz_ipfix.c - libFuzzer target for dip_collect_ipfix: a sequence of
 * length-prefixed messages to one collector (fuzz_collect_common.h). */
#include "fuzz_collect_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_messages(dip_collect_ipfix, data, size);
    return 0;
}
