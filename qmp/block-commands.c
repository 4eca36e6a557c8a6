/* QMP commands on block nodes: blockdev-add/-del, query-named-block-nodes,
 * block_resize, blockdev-snapshot, change-backing-file. */
#include "qmp/qmp.h"

void qmp_register_block_commands(void)
{
}
