/* QMP commands on block nodes: blockdev-add/-del, query-named-block-nodes,
 * block_resize, blockdev-snapshot, change-backing-file. */
#include "qmp/qmp.h"

void qmp_register_block_commands(void)
{
}

bool coroutine_fn qmp_co_blockdev_add_opts(QblkOpts *opts, GError **errp)
{
    qblk_opts_free(opts);
    qblk_error_set(errp, "--blockdev is not built yet");
    return false;
}

void coroutine_fn qmp_co_blockdev_close_all(void)
{
}
