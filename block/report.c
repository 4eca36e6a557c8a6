/* How the library tells its user what it found without printing: check
 * findings per node, corruption events per process (see block.h). */
#include "qblk/block_int.h"

static BdrvCorruptionFunc *corruption_handler;
static void *corruption_opaque;

void bdrv_set_check_report(BlockDriverState *bs, BdrvCheckReportFunc *fn, void *opaque)
{
    bs->check_report = fn;
    bs->check_report_opaque = opaque;
}

void bdrv_check_report(BlockDriverState *bs, BdrvCheckMsgKind kind, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    if (!bs->check_report) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    bs->check_report(bs->check_report_opaque, kind, msg);
}

void bdrv_set_corruption_handler(BdrvCorruptionFunc *fn, void *opaque)
{
    corruption_handler = fn;
    corruption_opaque = opaque;
}

void bdrv_report_corruption(const BdrvCorruptionEvent *ev)
{
    if (corruption_handler) {
        corruption_handler(corruption_opaque, ev);
    }
}
