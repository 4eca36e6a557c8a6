/* qmp/job-commands.c's handlers called directly (the monitor is stubbed
 * out below): QEMU 7.2's refusal texts and classes as qemu-storage-daemon
 * gives them, and the QMP events' names and members in order. */
#include <string.h>
#include <glib.h>
#include "qblk/job.h"
#include "qmp/qmp.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

/* ----- The monitor's side, stubbed ----- */

static const QmpCommand *registered;
static size_t n_registered;
static GString *events;

void qmp_schema_add(const char *qapi_text)
{
    g_assert_nonnull(strstr(qapi_text, "'command': 'block-stream'"));
}

void qmp_register_commands(const QmpCommand *cmds, size_t n)
{
    registered = cmds;
    n_registered = n;
}

void qmp_event_emit(const char *name, QblkJson *data)
{
    g_autofree char *s = data ? qblk_json_to_string(data, false) : g_strdup("");

    g_string_append_printf(events, "%s %s\n", name, s);
    qblk_json_free(data);
}

/* ----- Calling a command ----- */

typedef struct Call {
    const char *name;
    QblkJson *args;
    QblkJson *ret;
    GError *err;
} Call;

static void coroutine_fn call_entry(void *opaque)
{
    Call *c = opaque;

    for (size_t i = 0; i < n_registered; i++) {
        if (!strcmp(registered[i].name, c->name)) {
            c->ret = registered[i].fn(c->args, &c->err);
            return;
        }
    }
    g_error("no command %s", c->name);
}

/* Runs name with args (taken) given as key/value pairs: "s:key", value
 * for strings, "i:key" int, "b:key" bool; returns the reply as
 * "ok <json>" or "<Class>: <desc>". */
static char *call(const char *name, ...)
{
    Call c = { .name = name, .args = qblk_json_object() };
    const char *key;
    va_list ap;
    char *reply;

    va_start(ap, name);
    while ((key = va_arg(ap, const char *))) {
        if (key[0] == 's') {
            qblk_json_set_str(c.args, key + 2, va_arg(ap, const char *));
        } else if (key[0] == 'i') {
            qblk_json_set_int(c.args, key + 2, va_arg(ap, int));
        } else {
            qblk_json_set_bool(c.args, key + 2, va_arg(ap, int));
        }
    }
    va_end(ap);
    bdrv_run_co(call_entry, &c);
    if (c.err) {
        reply = g_strdup_printf("%s: %s", qblk_error_class(c.err), c.err->message);
        g_error_free(c.err);
    } else {
        g_autofree char *s = qblk_json_to_string(c.ret, false);

        reply = g_strdup_printf("ok %s", s);
        qblk_json_free(c.ret);
    }
    qblk_json_free(c.args);
    return reply;
}

#define assert_call(want, ...)                                    \
    do {                                                          \
        g_autofree char *got_ = call(__VA_ARGS__, NULL);          \
        g_assert_cmpstr(got_, ==, want);                          \
    } while (0)

static void run_until_gone(const char *id)
{
    int64_t deadline = qblk_clock_ns() + 60 * 1000000000LL;

    while (job_find(id)) {
        g_assert_cmpint(qblk_clock_ns(), <, deadline);
        qblk_loop_iterate(true);
    }
}

/* The chain base.raw <- mid.qcow2 <- top.qed, every node named (as
 * blockdev-add names them), plus an unrelated node "other". */
static void test_refusals_and_events(void)
{
    g_autofree char *dir = unit_tmpdir_new("qblk-qmpjobs-XXXXXX");
    g_autofree char *base = unit_create(dir, "raw", "base.raw", "size=8M");
    g_autofree char *mo = g_strdup_printf("size=8M,backing_file=%s,backing_fmt=raw", base);
    g_autofree char *mid = unit_create(dir, "qcow2", "mid.qcow2", mo);
    g_autofree char *to = g_strdup_printf("size=8M,backing_file=%s,backing_fmt=qcow2", mid);
    g_autofree char *top = unit_create(dir, "qed", "top.qed", to);
    g_autofree char *topt = g_strdup_printf(
        "driver=qed,node-name=top,file.filename=%s,backing.node-name=mid,"
        "backing.driver=qcow2,backing.file.filename=%s,backing.backing.node-name=base,"
        "backing.backing.driver=raw,backing.backing.file.filename=%s", top, mid, base);
    g_autofree char *oopt = g_strdup_printf("driver=raw,node-name=other,file.filename=%s",
                                            base);
    BlockDriverState *t, *o, *b;
    g_autofree uint8_t *buf = g_malloc(1 << 20);

    b = bdrv_open(base, NULL, BDRV_O_RDWR, NULL, NULL);
    memset(buf, 0x5a, 1 << 20);
    g_assert_cmpint(bdrv_pwrite(b, 0, 1 << 20, buf, 0), ==, 0);
    bdrv_unref(b);
    t = unit_open_opts(topt, BDRV_O_RDWR);
    o = unit_open_opts(oopt, 0);

    assert_call("GenericError: Cannot find device='nosuch' nor node-name='nosuch'",
                "block-stream", "s:device", "nosuch");
    assert_call("GenericError: Invalid job ID ''", "block-stream", "s:device", "top");
    assert_call("GenericError: Invalid job ID '1x'", "block-stream", "s:job-id", "1x",
                "s:device", "top");
    assert_call("GenericError: 'base' and 'base-node' cannot be specified at the same time",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:base", "x",
                "s:base-node", "mid");
    assert_call("GenericError: 'bottom' and 'base-node' cannot be specified at the same time",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:bottom", "x",
                "s:base-node", "mid");
    assert_call("GenericError: backing file specified, but streaming the entire chain",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:bottom", "mid",
                "s:backing-file", "x");
    assert_call("GenericError: Cannot find device='' nor node-name='nosuch'",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:base-node", "nosuch");
    assert_call("GenericError: Node 'other' is not a backing image of 'top'",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:base-node", "other");
    assert_call("GenericError: Node 'top' is not a backing image of 'top'",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:base-node", "top");
    assert_call("GenericError: Can't find 'nosuch.img' in the backing chain",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:base", "nosuch.img");
    assert_call("GenericError: Node 'other' is not in a chain starting from 'top'",
                "block-stream", "s:job-id", "s", "s:device", "top", "s:bottom", "other");

    g_string_truncate(events, 0);
    assert_call("GenericError: Parameter 'speed' expects a non-negative value",
                "block-stream", "s:job-id", "s", "s:device", "top", "i:speed", -1);
    g_assert_cmpstr(events->str, ==,
                    "JOB_STATUS_CHANGE {\"status\": \"created\", \"id\": \"s\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"null\", \"id\": \"s\"}\n");

    /* Nothing to stream: len 0, offset 0. */
    g_string_truncate(events, 0);
    assert_call("ok {}", "block-stream", "s:job-id", "s", "s:device", "mid",
                "s:base-node", "base", "i:speed", 1);
    run_until_gone("s");
    g_assert_cmpstr(events->str, ==,
                    "JOB_STATUS_CHANGE {\"status\": \"created\", \"id\": \"s\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"running\", \"id\": \"s\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"waiting\", \"id\": \"s\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"pending\", \"id\": \"s\"}\n"
                    "BLOCK_JOB_COMPLETED {\"device\": \"s\", \"len\": 0, \"offset\": 0, "
                    "\"speed\": 1, \"type\": \"stream\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"concluded\", \"id\": \"s\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"null\", \"id\": \"s\"}\n");

    /* A slow job, and what is refused while it runs. */
    assert_call("ok {}", "block-stream", "s:job-id", "s", "s:device", "top", "i:speed", 1);
    assert_call("GenericError: Node 'top' is busy: block device is in use by block job: "
                "stream", "block-stream", "s:job-id", "s2", "s:device", "top");
    assert_call("GenericError: Node 'mid' is busy: block device is in use by block job: "
                "stream", "block-stream", "s:job-id", "s2", "s:device", "mid");
    /* Once the first chunk is copied, the job sleeps for the speed. */
    for (JobInfo info = { 0 }; !(info.current_progress && !info.busy);
         job_query(job_find("s"), &info)) {
        qblk_loop_iterate(true);
    }
    assert_call("ok [{\"auto-finalize\": true, \"io-status\": \"ok\", \"device\": \"s\", "
                "\"auto-dismiss\": true, \"busy\": false, \"len\": 8388608, \"offset\": 524288, "
                "\"status\": \"running\", \"paused\": false, \"speed\": 1, \"ready\": false, "
                "\"type\": \"stream\"}]", "query-block-jobs");
    assert_call("ok [{\"current-progress\": 524288, \"status\": \"running\", "
                "\"total-progress\": 8388608, \"type\": \"stream\", \"id\": \"s\"}]",
                "query-jobs");
    assert_call("DeviceNotActive: Block job 'nosuch' not found", "block-job-set-speed",
                "s:device", "nosuch", "i:speed", 1);
    assert_call("GenericError: Parameter 'speed' expects a non-negative value",
                "block-job-set-speed", "s:device", "s", "i:speed", -1);
    assert_call("DeviceNotActive: Block job 'nosuch' not found", "block-job-finalize",
                "s:id", "nosuch");
    assert_call("DeviceNotActive: Block job 'nosuch' not found", "block-job-dismiss",
                "s:id", "nosuch");
    assert_call("GenericError: Job 's' in state 'running' cannot accept command verb "
                "'complete'", "block-job-complete", "s:device", "s");
    assert_call("GenericError: Job 's' in state 'running' cannot accept command verb "
                "'finalize'", "job-finalize", "s:id", "s");
    assert_call("GenericError: Job not found", "job-dismiss", "s:id", "nosuch");
    assert_call("GenericError: Job not found", "job-pause", "s:id", "nosuch");
    assert_call("GenericError: Can't resume a job that was not paused", "job-resume",
                "s:id", "s");
    g_string_truncate(events, 0);
    assert_call("ok {}", "block-job-cancel", "s:device", "s");
    run_until_gone("s");
    g_assert_cmpstr(events->str, ==,
                    "JOB_STATUS_CHANGE {\"status\": \"aborting\", \"id\": \"s\"}\n"
                    "BLOCK_JOB_CANCELLED {\"device\": \"s\", \"len\": 8388608, "
                    "\"offset\": 524288, \"speed\": 1, \"type\": \"stream\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"concluded\", \"id\": \"s\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"null\", \"id\": \"s\"}\n");

    /* block-commit refusals. */
    assert_call("DeviceNotFound: Device 'nosuch' not found", "block-commit", "s:job-id", "c",
                "s:device", "nosuch", "s:top-node", "mid");
    assert_call("GenericError: Need a root block node", "block-commit", "s:job-id", "c",
                "s:device", "mid");
    assert_call("GenericError: 'base-node' and 'base' are mutually exclusive", "block-commit",
                "s:job-id", "c", "s:device", "top", "s:base", "x", "s:base-node", "base");
    assert_call("GenericError: cannot commit an image into itself", "block-commit",
                "s:job-id", "c", "s:device", "top", "s:top-node", "mid", "s:base-node", "mid");

    /* Intermediate commit with manual finalize and dismiss. */
    g_string_truncate(events, 0);
    assert_call("ok {}", "block-commit", "s:job-id", "c", "s:device", "top",
                "s:top-node", "mid", "s:base-node", "base", "b:auto-finalize", false,
                "b:auto-dismiss", false);
    while (!strstr(events->str, "BLOCK_JOB_PENDING")) {
        qblk_loop_iterate(true);
    }
    assert_call("ok {}", "job-finalize", "s:id", "c");
    assert_call("ok {}", "job-dismiss", "s:id", "c");
    g_assert_cmpstr(events->str, ==,
                    "JOB_STATUS_CHANGE {\"status\": \"created\", \"id\": \"c\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"running\", \"id\": \"c\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"waiting\", \"id\": \"c\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"pending\", \"id\": \"c\"}\n"
                    "BLOCK_JOB_PENDING {\"type\": \"commit\", \"id\": \"c\"}\n"
                    "BLOCK_JOB_COMPLETED {\"device\": \"c\", \"len\": 8388608, "
                    "\"offset\": 8388608, \"speed\": 0, \"type\": \"commit\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"concluded\", \"id\": \"c\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"null\", \"id\": \"c\"}\n");
    g_assert_true(bdrv_backing(t) == bdrv_find_node("base"));

    bdrv_unref(o);
    bdrv_unref(t);
    unit_tmpdir_remove(g_steal_pointer(&dir));
}

/* blockdev-create: the file, then qcow2 on a node of it; a missing node
 * fails the job, not the command. */
static void test_blockdev_create(void)
{
    g_autofree char *dir = unit_tmpdir_new("qblk-qmpjobs-XXXXXX");
    g_autofree char *path = g_build_filename(dir, "c.qcow2", NULL);
    g_autofree char *fopt = NULL;
    BlockDriverState *f, *bs;
    Call c = { .name = "blockdev-create" };
    QblkJson *options;

    g_string_truncate(events, 0);
    c.args = qblk_json_object();
    qblk_json_set_str(c.args, "job-id", "c0");
    options = qblk_json_set(c.args, "options", qblk_json_object());
    qblk_json_set_str(options, "driver", "file");
    qblk_json_set_str(options, "filename", path);
    qblk_json_set_int(options, "size", 0);
    bdrv_run_co(call_entry, &c);
    g_assert_no_error(c.err);
    qblk_json_free(c.ret);
    qblk_json_free(c.args);
    while (!strstr(events->str, "concluded")) {
        qblk_loop_iterate(true);
    }
    assert_call("ok [{\"current-progress\": 1, \"status\": \"concluded\", "
                "\"total-progress\": 1, \"type\": \"create\", \"id\": \"c0\"}]", "query-jobs");
    assert_call("ok []", "query-block-jobs");
    assert_call("ok {}", "job-dismiss", "s:id", "c0");
    g_assert_cmpstr(events->str, ==,
                    "JOB_STATUS_CHANGE {\"status\": \"created\", \"id\": \"c0\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"running\", \"id\": \"c0\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"waiting\", \"id\": \"c0\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"pending\", \"id\": \"c0\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"concluded\", \"id\": \"c0\"}\n"
                    "JOB_STATUS_CHANGE {\"status\": \"null\", \"id\": \"c0\"}\n");

    fopt = g_strdup_printf("driver=file,node-name=cf,filename=%s", path);
    f = unit_open_opts(fopt, BDRV_O_RDWR);
    c = (Call) { .name = "blockdev-create", .args = qblk_json_object() };
    qblk_json_set_str(c.args, "job-id", "c1");
    options = qblk_json_set(c.args, "options", qblk_json_object());
    qblk_json_set_str(options, "driver", "qcow2");
    qblk_json_set_str(options, "file", "cf");
    qblk_json_set_int(options, "size", 1 << 30);
    bdrv_run_co(call_entry, &c);
    g_assert_no_error(c.err);
    qblk_json_free(c.ret);
    qblk_json_free(c.args);
    while (job_find("c1") && !strstr(events->str, "\"concluded\", \"id\": \"c1\"")) {
        qblk_loop_iterate(true);
    }
    assert_call("ok {}", "job-dismiss", "s:id", "c1");
    bs = bdrv_open(path, NULL, 0, NULL, NULL);
    g_assert_cmpstr(bdrv_format_name(bs), ==, "qcow2");
    g_assert_cmpint(bdrv_getlength(bs), ==, 1 << 30);
    bdrv_unref(bs);
    /* The open file node sees the new image. */
    g_assert_cmpint(bdrv_getlength(f), >, 0);
    bdrv_unref(f);

    c = (Call) { .name = "blockdev-create", .args = qblk_json_object() };
    qblk_json_set_str(c.args, "job-id", "c2");
    options = qblk_json_set(c.args, "options", qblk_json_object());
    qblk_json_set_str(options, "driver", "qed");
    qblk_json_set_str(options, "file", "nosuch");
    qblk_json_set_int(options, "size", 1 << 20);
    bdrv_run_co(call_entry, &c);
    g_assert_no_error(c.err);
    qblk_json_free(c.ret);
    qblk_json_free(c.args);
    while (!strstr(events->str, "\"concluded\", \"id\": \"c2\"")) {
        qblk_loop_iterate(true);
    }
    assert_call("ok [{\"current-progress\": 1, \"status\": \"concluded\", "
                "\"total-progress\": 1, \"type\": \"create\", \"id\": \"c2\", \"error\": "
                "\"Cannot find device='nosuch' nor node-name='nosuch'\"}]", "query-jobs");
    assert_call("ok {}", "job-dismiss", "s:id", "c2");
    unit_tmpdir_remove(g_steal_pointer(&dir));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    events = g_string_new(NULL);
    qmp_register_job_commands();
    g_test_add_func("/qmp-jobs/refusals-and-events", test_refusals_and_events);
    g_test_add_func("/qmp-jobs/blockdev-create", test_blockdev_create);
    return g_test_run();
}
