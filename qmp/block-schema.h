/* The QAPI schema of the block-node commands (qmp/block-commands.c). */
#ifndef QBLK_QMP_BLOCK_SCHEMA_H
#define QBLK_QMP_BLOCK_SCHEMA_H

/* Adds the definitions of BlockdevOptions (the drivers qblk has), its
 * references, BlockDeviceInfo and the commands, as QEMU 7.2 has them. */
void qmp_block_schema_add(void);

#endif
