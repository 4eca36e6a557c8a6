/* qblk-storage-daemon: placeholder until the monitor lands. */
#include <stdio.h>

#include "qmp/qmp.h"

int main(void)
{
    qmp_register_block_commands();
    qmp_register_job_commands();
    fprintf(stderr, "qblk-storage-daemon: not built yet\n");
    return 1;
}
