/* QMP commands on jobs: block-stream, block-commit, blockdev-create, the
 * job verbs of both families, query-block-jobs, query-jobs, and the job
 * events. Names are resolved here with QEMU 7.2's error texts; the jobs
 * themselves are the library's (include/qblk/job.h). */
#include <inttypes.h>
#include <string.h>

#include "qblk/job.h"
#include "qmp/qmp.h"

static const char job_schema[] =
    "{ 'enum': 'BlockdevOnError', 'data': [ 'report', 'ignore', 'enospc', 'stop', 'auto' ] }"
    "{ 'enum': 'JobType', 'data': [ 'commit', 'stream', 'mirror', 'backup', 'create',"
    "  'amend', 'snapshot-load', 'snapshot-save', 'snapshot-delete' ] }"
    "{ 'enum': 'JobStatus', 'data': [ 'undefined', 'created', 'running', 'paused', 'ready',"
    "  'standby', 'waiting', 'pending', 'aborting', 'concluded', 'null' ] }"
    "{ 'enum': 'BlockDeviceIoStatus', 'data': [ 'ok', 'failed', 'nospace' ] }"
    "{ 'enum': 'IoOperationType', 'data': [ 'read', 'write' ] }"
    "{ 'enum': 'BlockErrorAction', 'data': [ 'ignore', 'report', 'stop' ] }"
    "{ 'struct': 'BlockJobInfo', 'data': { 'type': 'JobType', 'device': 'str', 'len': 'int',"
    "  'offset': 'int', 'busy': 'bool', 'paused': 'bool', 'speed': 'int',"
    "  'io-status': 'BlockDeviceIoStatus', 'ready': 'bool', 'status': 'JobStatus',"
    "  'auto-finalize': 'bool', 'auto-dismiss': 'bool', '*error': 'str' } }"
    "{ 'struct': 'JobInfo', 'data': { 'id': 'str', 'type': 'JobType', 'status': 'JobStatus',"
    "  'current-progress': 'int', 'total-progress': 'int', '*error': 'str' } }"
    "{ 'command': 'block-stream', 'data': { '*job-id': 'str', 'device': 'str',"
    "  '*base': 'str', '*base-node': 'str', '*backing-file': 'str', '*bottom': 'str',"
    "  '*speed': 'int', '*on-error': 'BlockdevOnError', '*filter-node-name': 'str',"
    "  '*auto-finalize': 'bool', '*auto-dismiss': 'bool' } }"
    "{ 'command': 'block-commit', 'data': { '*job-id': 'str', 'device': 'str',"
    "  '*base-node': 'str', '*base': 'str', '*top-node': 'str', '*top': 'str',"
    "  '*backing-file': 'str', '*speed': 'int', '*on-error': 'BlockdevOnError',"
    "  '*filter-node-name': 'str', '*auto-finalize': 'bool', '*auto-dismiss': 'bool' } }"
    "{ 'enum': 'BlockdevCreateDriver', 'data': [ 'file', 'qcow2', 'qed' ] }"
    "{ 'enum': 'PreallocMode', 'data': [ 'off', 'metadata', 'falloc', 'full' ] }"
    "{ 'enum': 'BlockdevQcow2Version', 'data': [ 'v2', 'v3' ] }"
    "{ 'struct': 'BlockdevCreateOptionsFile', 'data': { 'filename': 'str', 'size': 'size',"
    "  '*preallocation': 'PreallocMode', '*nocow': 'bool', '*extent-size-hint': 'size' } }"
    "{ 'struct': 'BlockdevCreateOptionsQcow2', 'data': { 'file': 'str', 'size': 'size',"
    "  '*version': 'BlockdevQcow2Version', '*backing-file': 'str', '*backing-fmt': 'str',"
    "  '*cluster-size': 'size', '*preallocation': 'PreallocMode', '*lazy-refcounts': 'bool',"
    "  '*refcount-bits': 'int' } }"
    "{ 'struct': 'BlockdevCreateOptionsQed', 'data': { 'file': 'str', 'size': 'size',"
    "  '*backing-file': 'str', '*backing-fmt': 'str', '*cluster-size': 'size',"
    "  '*table-size': 'int' } }"
    "{ 'union': 'BlockdevCreateOptions', 'base': { 'driver': 'BlockdevCreateDriver' },"
    "  'discriminator': 'driver', 'data': { 'file': 'BlockdevCreateOptionsFile',"
    "  'qcow2': 'BlockdevCreateOptionsQcow2', 'qed': 'BlockdevCreateOptionsQed' } }"
    "{ 'command': 'blockdev-create', 'data': { 'job-id': 'str',"
    "  'options': 'BlockdevCreateOptions' } }"
    "{ 'command': 'block-job-set-speed', 'data': { 'device': 'str', 'speed': 'int' } }"
    "{ 'command': 'block-job-cancel', 'data': { 'device': 'str', '*force': 'bool' } }"
    "{ 'command': 'block-job-pause', 'data': { 'device': 'str' } }"
    "{ 'command': 'block-job-resume', 'data': { 'device': 'str' } }"
    "{ 'command': 'block-job-complete', 'data': { 'device': 'str' } }"
    "{ 'command': 'block-job-dismiss', 'data': { 'id': 'str' } }"
    "{ 'command': 'block-job-finalize', 'data': { 'id': 'str' } }"
    "{ 'command': 'job-pause', 'data': { 'id': 'str' } }"
    "{ 'command': 'job-resume', 'data': { 'id': 'str' } }"
    "{ 'command': 'job-cancel', 'data': { 'id': 'str' } }"
    "{ 'command': 'job-complete', 'data': { 'id': 'str' } }"
    "{ 'command': 'job-dismiss', 'data': { 'id': 'str' } }"
    "{ 'command': 'job-finalize', 'data': { 'id': 'str' } }"
    "{ 'command': 'query-block-jobs', 'returns': [ 'BlockJobInfo' ] }"
    "{ 'command': 'query-jobs', 'returns': [ 'JobInfo' ] }"
    "{ 'event': 'JOB_STATUS_CHANGE', 'data': { 'id': 'str', 'status': 'JobStatus' } }"
    "{ 'event': 'BLOCK_JOB_COMPLETED', 'data': { 'type': 'JobType', 'device': 'str',"
    "  'len': 'int', 'offset': 'int', 'speed': 'int', '*error': 'str' } }"
    "{ 'event': 'BLOCK_JOB_CANCELLED', 'data': { 'type': 'JobType', 'device': 'str',"
    "  'len': 'int', 'offset': 'int', 'speed': 'int' } }"
    "{ 'event': 'BLOCK_JOB_ERROR', 'data': { 'device': 'str', 'operation': 'IoOperationType',"
    "  'action': 'BlockErrorAction' } }"
    "{ 'event': 'BLOCK_JOB_READY', 'data': { 'type': 'JobType', 'device': 'str',"
    "  'len': 'int', 'offset': 'int', 'speed': 'int' } }"
    "{ 'event': 'BLOCK_JOB_PENDING', 'data': { 'type': 'JobType', 'id': 'str' } }";

static const char *const on_error_names[] = {
    "report", "ignore", "enospc", "stop", "auto", NULL,
};

/* ----- Lookups with QEMU's texts ----- */

static bool chain_contains(BlockDriverState *top, BlockDriverState *bs)
{
    for (BlockDriverState *p = top; p; p = bdrv_backing(p)) {
        if (p == bs) {
            return true;
        }
    }
    return false;
}

/* A backing image of bs by the name stored in its overlay's header or
 * its own filename (QEMU's bdrv_find_backing_image, simplified). */
static BlockDriverState *find_backing_image(BlockDriverState *bs, const char *name)
{
    for (BlockDriverState *p = bs; p && bdrv_backing(p); p = bdrv_backing(p)) {
        BlockDriverState *b = bdrv_backing(p);
        const char *stored = bdrv_backing_file(p);

        if ((stored && !strcmp(stored, name)) || !strcmp(bdrv_filename(b), name)) {
            return b;
        }
    }
    return NULL;
}

static Job *find_block_job(const char *id, GError **errp)
{
    Job *job = job_find(id);
    JobInfo info;

    if (job) {
        job_query(job, &info);
        if (info.is_block_job) {
            return job;
        }
    }
    qblk_error_set_code(errp, QBLK_ERROR_DEVICE_NOT_ACTIVE, "Block job '%s' not found", id);
    return NULL;
}

static Job *find_job(const char *id, GError **errp)
{
    Job *job = job_find(id);

    if (!job) {
        qblk_error_set(errp, "Job not found");
    }
    return job;
}

static void job_options_from_args(const QblkJson *args, JobOptions *o)
{
    const char *id = qmp_arg_str(args, "job-id");

    /* QEMU defaults the id to the device's BlockBackend name, which a
     * node has none of: "" and "Invalid job ID ''". */
    o->id = id ? id : "";
    o->speed = qmp_arg_int(args, "speed", 0);
    o->on_error = qmp_arg_enum(args, "on-error", on_error_names, BLOCKDEV_ON_ERROR_REPORT);
    o->auto_finalize = qmp_arg_bool(args, "auto-finalize", true);
    o->auto_dismiss = qmp_arg_bool(args, "auto-dismiss", true);
}

/* ----- block-stream ----- */

static QblkJson *coroutine_fn qmp_block_stream(const QblkJson *args, GError **errp)
{
    const char *device = qmp_arg_str(args, "device");
    const char *base = qmp_arg_str(args, "base");
    const char *base_node = qmp_arg_str(args, "base-node");
    const char *bottom = qmp_arg_str(args, "bottom");
    const char *backing_file = qmp_arg_str(args, "backing-file");
    BlockDriverState *bs, *base_bs = NULL;
    StreamJobOptions o = { 0 };

    if (base && base_node) {
        qblk_error_set(errp, "'base' and 'base-node' cannot be specified at the same time");
        return NULL;
    }
    if (base && bottom) {
        qblk_error_set(errp, "'base' and 'bottom' cannot be specified at the same time");
        return NULL;
    }
    if (bottom && base_node) {
        qblk_error_set(errp, "'bottom' and 'base-node' cannot be specified at the same time");
        return NULL;
    }
    bs = bdrv_lookup_bs(device, device, errp);
    if (!bs) {
        return NULL;
    }
    /* A filter (copy-on-read, blkdebug) names the image below it. */
    while (!bdrv_supports_backing(bs) && !bdrv_backing(bs) && bdrv_file_child(bs) &&
           bdrv_supports_backing(bdrv_file_child(bs))) {
        bs = bdrv_file_child(bs);
    }
    if (base) {
        base_bs = find_backing_image(bs, base);
        if (!base_bs) {
            qblk_error_set(errp, "Can't find '%s' in the backing chain", base);
            return NULL;
        }
    }
    if (base_node) {
        base_bs = bdrv_lookup_bs("", base_node, errp);
        if (!base_bs) {
            return NULL;
        }
        if (base_bs == bs || !chain_contains(bs, base_bs)) {
            qblk_error_set(errp, "Node '%s' is not a backing image of '%s'", base_node, device);
            return NULL;
        }
    }
    if (bottom) {
        BlockDriverState *bottom_bs = bdrv_lookup_bs("", bottom, errp);

        if (!bottom_bs) {
            return NULL;
        }
        if (!chain_contains(bs, bottom_bs)) {
            qblk_error_set(errp, "Node '%s' is not in a chain starting from '%s'", bottom,
                           device);
            return NULL;
        }
    }
    for (BlockDriverState *p = bs; p && p != base_bs; p = bdrv_backing(p)) {
        if (!bdrv_check_not_in_use_by_job(p, errp)) {
            return NULL;
        }
    }
    if (!base_bs && backing_file) {
        qblk_error_set(errp, "backing file specified, but streaming the entire chain");
        return NULL;
    }
    if (bottom) {
        base_bs = bdrv_backing(bdrv_find_node(bottom));
    }
    job_options_from_args(args, &o.job);
    o.top = bs;
    o.base = base_bs;
    o.backing_file = backing_file;
    o.filter_node_name = qmp_arg_str(args, "filter-node-name");
    if (!stream_job_co_start(&o, errp)) {
        return NULL;
    }
    return qblk_json_object();
}

/* ----- block-commit ----- */

/* A node no other node holds as a child (users do not count). */
static bool is_root_node(BlockDriverState *bs)
{
    for (BdrvChild *c = bdrv_next_parent(bs, NULL); c; c = bdrv_next_parent(bs, c)) {
        if (bdrv_child_parent(c)) {
            return false;
        }
    }
    return true;
}

static QblkJson *coroutine_fn qmp_block_commit(const QblkJson *args, GError **errp)
{
    const char *device = qmp_arg_str(args, "device");
    const char *top = qmp_arg_str(args, "top"), *top_node = qmp_arg_str(args, "top-node");
    const char *base = qmp_arg_str(args, "base"), *base_node = qmp_arg_str(args, "base-node");
    const char *backing_file = qmp_arg_str(args, "backing-file");
    BlockDriverState *bs, *top_bs, *base_bs;
    CommitJobOptions o = { 0 };

    bs = bdrv_find_node(device);
    if (!bs) {
        qblk_error_set_code(errp, QBLK_ERROR_DEVICE_NOT_FOUND, "Device '%s' not found", device);
        return NULL;
    }
    if (!is_root_node(bs)) {
        qblk_error_set(errp, "Need a root block node");
        return NULL;
    }
    top_bs = bs;
    if (top_node && top) {
        qblk_error_set(errp, "'top-node' and 'top' are mutually exclusive");
        return NULL;
    } else if (top_node) {
        top_bs = bdrv_lookup_bs("", top_node, errp);
        if (!top_bs) {
            return NULL;
        }
        if (!chain_contains(bs, top_bs)) {
            qblk_error_set(errp, "'%s' is not in this backing file chain", top_node);
            return NULL;
        }
    } else if (top) {
        top_bs = !strcmp(bdrv_filename(bs), top) ? bs : find_backing_image(bs, top);
        if (!top_bs) {
            qblk_error_set(errp, "Top image file %s not found", top);
            return NULL;
        }
    }
    if (base_node && base) {
        qblk_error_set(errp, "'base-node' and 'base' are mutually exclusive");
        return NULL;
    } else if (base_node) {
        base_bs = bdrv_lookup_bs("", base_node, errp);
        if (!base_bs) {
            return NULL;
        }
        if (!chain_contains(top_bs, base_bs)) {
            qblk_error_set(errp, "'%s' is not in this backing file chain", base_node);
            return NULL;
        }
    } else if (base) {
        base_bs = find_backing_image(top_bs, base);
        if (!base_bs) {
            qblk_error_set(errp, "Can't find '%s' in the backing chain", base);
            return NULL;
        }
    } else {
        base_bs = top_bs;
        while (bdrv_backing(base_bs)) {
            base_bs = bdrv_backing(base_bs);
        }
        if (base_bs == top_bs) {
            qblk_error_set(errp, "There is no backimg image");
            return NULL;
        }
    }
    for (BlockDriverState *p = top_bs; p && p != base_bs; p = bdrv_backing(p)) {
        if (!bdrv_check_not_in_use_by_job(p, errp)) {
            return NULL;
        }
    }
    if (top_bs == base_bs) {
        qblk_error_set(errp, "cannot commit an image into itself");
        return NULL;
    }
    if (!bdrv_check_not_in_use_by_job(base_bs, errp)) {
        return NULL;
    }
    if (top_bs == bs) {
        if (backing_file) {
            qblk_error_set(errp, "'backing-file' specified, but 'top' is the active layer");
            return NULL;
        }
        qblk_error_set(errp, "Active block commit (top is the active layer '%s') is not "
                       "supported", device);
        return NULL;
    }
    job_options_from_args(args, &o.job);
    o.top = top_bs;
    o.base = base_bs;
    o.backing_file = backing_file;
    o.filter_node_name = qmp_arg_str(args, "filter-node-name");
    if (!commit_job_co_start(&o, errp)) {
        return NULL;
    }
    return qblk_json_object();
}

/* ----- blockdev-create ----- */

static void set_opt(QblkOpts *opts, const char *key, const QblkJson *options,
                    const char *member)
{
    QblkJson *v = qblk_json_get(options, member);
    g_autofree char *s = NULL;

    if (!v) {
        return;
    }
    switch (qblk_json_type(v)) {
    case QBLK_JSON_BOOL:
        qblk_opts_set(opts, key, qblk_json_get_bool(v) ? "on" : "off");
        return;
    case QBLK_JSON_STRING:
        qblk_opts_set(opts, key, qblk_json_get_string(v));
        return;
    default:
        s = g_strdup_printf("%" PRId64, qblk_json_get_int(v));
        qblk_opts_set(opts, key, s);
        return;
    }
}

static QblkJson *coroutine_fn qmp_blockdev_create(const QblkJson *args, GError **errp)
{
    const QblkJson *options = qblk_json_get(args, "options");
    const char *driver = qblk_json_get_string(qblk_json_get(options, "driver"));
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autofree char *fail = NULL;
    CreateJobOptions o = { .job = { .id = qmp_arg_str(args, "job-id") },
                           .create_opts = opts };

    set_opt(opts, "size", options, "size");
    set_opt(opts, "preallocation", options, "preallocation");
    if (!strcmp(driver, "file")) {
        o.filename = qmp_arg_str(options, "filename");
    } else {
        const char *file = qmp_arg_str(options, "file");
        g_autoptr(GError) not_found = NULL;
        BlockDriverState *file_bs = bdrv_lookup_bs(file, file, &not_found);

        o.fmt = driver;
        if (file_bs) {
            o.filename = bdrv_filename(file_bs);
        } else {
            fail = g_strdup(not_found->message);
            o.fail_message = fail;
        }
        set_opt(opts, "backing_file", options, "backing-file");
        set_opt(opts, "backing_fmt", options, "backing-fmt");
        set_opt(opts, "cluster_size", options, "cluster-size");
        if (!strcmp(driver, "qcow2")) {
            const char *version = qmp_arg_str(options, "version");

            qblk_opts_set(opts, "compat", version && !strcmp(version, "v2") ? "0.10" : "1.1");
            set_opt(opts, "lazy_refcounts", options, "lazy-refcounts");
            set_opt(opts, "refcount_bits", options, "refcount-bits");
        } else {
            set_opt(opts, "table_size", options, "table-size");
        }
    }
    if (!create_job_co_start(&o, errp)) {
        return NULL;
    }
    return qblk_json_object();
}

/* ----- Verbs ----- */

/* One verb on the job a command names: block-job-* look among block jobs
 * (DeviceNotActive "Block job 'x' not found"), job-* among all jobs
 * (GenericError "Job not found"). */
static QblkJson *coroutine_fn job_verb(const QblkJson *args, GError **errp, bool block_family,
                                       const char *member, JobVerb verb)
{
    const char *id = qmp_arg_str(args, member);
    Job *job = block_family ? find_block_job(id, errp) : find_job(id, errp);
    bool ok;

    if (!job) {
        return NULL;
    }
    switch (verb) {
    case JOB_VERB_SET_SPEED:
        ok = job_set_speed(job, qmp_arg_int(args, "speed", 0), errp);
        break;
    case JOB_VERB_CANCEL:
        /* block-job-cancel's force only matters for ready jobs; job-cancel
         * always forces, as QEMU's. */
        ok = job_user_cancel(job, block_family ? qmp_arg_bool(args, "force", false) : true,
                             errp);
        break;
    case JOB_VERB_PAUSE:
        ok = job_user_pause(job, errp);
        break;
    case JOB_VERB_RESUME:
        ok = job_user_resume(job, errp);
        break;
    case JOB_VERB_COMPLETE:
        ok = job_complete(job, errp);
        break;
    case JOB_VERB_DISMISS:
        ok = job_dismiss(job, errp);
        break;
    case JOB_VERB_FINALIZE:
        ok = job_finalize(job, errp);
        break;
    default:
        g_assert_not_reached();
    }
    return ok ? qblk_json_object() : NULL;
}

static QblkJson *coroutine_fn qmp_block_job_set_speed(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, true, "device", JOB_VERB_SET_SPEED);
}

static QblkJson *coroutine_fn qmp_block_job_cancel(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, true, "device", JOB_VERB_CANCEL);
}

static QblkJson *coroutine_fn qmp_block_job_pause(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, true, "device", JOB_VERB_PAUSE);
}

static QblkJson *coroutine_fn qmp_block_job_resume(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, true, "device", JOB_VERB_RESUME);
}

static QblkJson *coroutine_fn qmp_block_job_complete(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, true, "device", JOB_VERB_COMPLETE);
}

static QblkJson *coroutine_fn qmp_block_job_dismiss(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, true, "id", JOB_VERB_DISMISS);
}

static QblkJson *coroutine_fn qmp_block_job_finalize(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, true, "id", JOB_VERB_FINALIZE);
}

static QblkJson *coroutine_fn qmp_job_pause(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, false, "id", JOB_VERB_PAUSE);
}

static QblkJson *coroutine_fn qmp_job_resume(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, false, "id", JOB_VERB_RESUME);
}

static QblkJson *coroutine_fn qmp_job_cancel(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, false, "id", JOB_VERB_CANCEL);
}

static QblkJson *coroutine_fn qmp_job_complete(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, false, "id", JOB_VERB_COMPLETE);
}

static QblkJson *coroutine_fn qmp_job_dismiss(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, false, "id", JOB_VERB_DISMISS);
}

static QblkJson *coroutine_fn qmp_job_finalize(const QblkJson *args, GError **errp)
{
    return job_verb(args, errp, false, "id", JOB_VERB_FINALIZE);
}

/* ----- Queries ----- */

static QblkJson *block_job_info(const JobInfo *info)
{
    QblkJson *o = qblk_json_object();

    qblk_json_set_str(o, "type", job_type_name(info->type));
    qblk_json_set_str(o, "device", info->id);
    qblk_json_set_int(o, "len", info->total_progress);
    qblk_json_set_int(o, "offset", info->current_progress);
    qblk_json_set_bool(o, "busy", info->busy);
    qblk_json_set_bool(o, "paused", info->paused);
    qblk_json_set_int(o, "speed", info->speed);
    qblk_json_set_str(o, "io-status", job_io_status_name(info->io_status));
    qblk_json_set_bool(o, "ready", info->ready);
    qblk_json_set_str(o, "status", job_status_name(info->status));
    qblk_json_set_bool(o, "auto-finalize", info->auto_finalize);
    qblk_json_set_bool(o, "auto-dismiss", info->auto_dismiss);
    if (info->error) {
        qblk_json_set_str(o, "error", info->error);
    }
    return o;
}

static QblkJson *coroutine_fn qmp_query_block_jobs(const QblkJson *args, GError **errp)
{
    QblkJson *list = qblk_json_array();

    for (Job *job = job_next(NULL); job; job = job_next(job)) {
        JobInfo info;

        job_query(job, &info);
        if (info.is_block_job) {
            qblk_json_append(list, block_job_info(&info));
        }
    }
    return list;
}

static QblkJson *coroutine_fn qmp_query_jobs(const QblkJson *args, GError **errp)
{
    QblkJson *list = qblk_json_array();

    for (Job *job = job_next(NULL); job; job = job_next(job)) {
        QblkJson *o = qblk_json_object();
        JobInfo info;

        job_query(job, &info);
        qblk_json_set_str(o, "id", info.id);
        qblk_json_set_str(o, "type", job_type_name(info.type));
        qblk_json_set_str(o, "status", job_status_name(info.status));
        qblk_json_set_int(o, "current-progress", info.current_progress);
        qblk_json_set_int(o, "total-progress", info.total_progress);
        if (info.error) {
            qblk_json_set_str(o, "error", info.error);
        }
        qblk_json_append(list, o);
    }
    return list;
}

/* ----- Events ----- */

/* {type, device, len, offset, speed}: BLOCK_JOB_COMPLETED/CANCELLED/READY. */
static QblkJson *block_job_event_data(const JobInfo *info)
{
    QblkJson *o = qblk_json_object();

    qblk_json_set_str(o, "type", job_type_name(info->type));
    qblk_json_set_str(o, "device", info->id);
    qblk_json_set_int(o, "len", info->total_progress);
    qblk_json_set_int(o, "offset", info->current_progress);
    qblk_json_set_int(o, "speed", info->speed);
    return o;
}

static void job_event(void *opaque, const JobEvent *ev)
{
    QblkJson *data;
    JobInfo info;

    job_query(ev->job, &info);
    switch (ev->kind) {
    case JOB_EVENT_STATUS_CHANGE:
        data = qblk_json_object();
        qblk_json_set_str(data, "id", info.id);
        qblk_json_set_str(data, "status", job_status_name(info.status));
        qmp_event_emit("JOB_STATUS_CHANGE", data);
        break;
    case JOB_EVENT_COMPLETED:
        data = block_job_event_data(&info);
        if (info.error) {
            qblk_json_set_str(data, "error", info.error);
        }
        qmp_event_emit("BLOCK_JOB_COMPLETED", data);
        break;
    case JOB_EVENT_CANCELLED:
        qmp_event_emit("BLOCK_JOB_CANCELLED", block_job_event_data(&info));
        break;
    case JOB_EVENT_READY:
        qmp_event_emit("BLOCK_JOB_READY", block_job_event_data(&info));
        break;
    case JOB_EVENT_ERROR:
        data = qblk_json_object();
        qblk_json_set_str(data, "device", info.id);
        qblk_json_set_str(data, "operation", ev->error_is_read ? "read" : "write");
        qblk_json_set_str(data, "action", block_error_action_name(ev->action));
        qmp_event_emit("BLOCK_JOB_ERROR", data);
        break;
    case JOB_EVENT_PENDING:
        data = qblk_json_object();
        qblk_json_set_str(data, "type", job_type_name(info.type));
        qblk_json_set_str(data, "id", info.id);
        qmp_event_emit("BLOCK_JOB_PENDING", data);
        break;
    }
}

void qmp_register_job_commands(void)
{
    static const QmpCommand cmds[] = {
        { "block-stream", qmp_block_stream },
        { "block-commit", qmp_block_commit },
        { "blockdev-create", qmp_blockdev_create },
        { "block-job-set-speed", qmp_block_job_set_speed },
        { "block-job-cancel", qmp_block_job_cancel },
        { "block-job-pause", qmp_block_job_pause },
        { "block-job-resume", qmp_block_job_resume },
        { "block-job-complete", qmp_block_job_complete },
        { "block-job-dismiss", qmp_block_job_dismiss },
        { "block-job-finalize", qmp_block_job_finalize },
        { "job-pause", qmp_job_pause },
        { "job-resume", qmp_job_resume },
        { "job-cancel", qmp_job_cancel },
        { "job-complete", qmp_job_complete },
        { "job-dismiss", qmp_job_dismiss },
        { "job-finalize", qmp_job_finalize },
        { "query-block-jobs", qmp_query_block_jobs },
        { "query-jobs", qmp_query_jobs },
    };

    qmp_schema_add(job_schema);
    qmp_register_commands(cmds, G_N_ELEMENTS(cmds));
    job_set_event_handler(job_event, NULL);
}
