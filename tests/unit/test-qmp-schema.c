/* The QAPI schema and the argument check: QEMU 7.2's messages and paths
 * (recorded from qemu-storage-daemon) for a schema shaped like the block
 * commands', and the introspection a libvirt-style client probes. */
#include <string.h>
#include <glib.h>

#include "qmp/dispatch.h"
#include "qmp/json-parse.h"

static const char test_schema[] =
    "{ 'enum': 'OnError', 'data': [ 'report', 'ignore', 'stop' ] }"
    "{ 'enum': 'Driver', 'data': [ 'file', 'raw', 'qed' ] }"
    "{ 'enum': 'Aio', 'data': [ 'threads', 'native' ] }"
    "{ 'struct': 'Cache', 'data': { '*direct': 'bool', '*no-flush': 'bool' } }"
    "{ 'union': 'Options', 'base': { 'driver': 'Driver', '*node-name': 'str',"
    "  '*cache': 'Cache' }, 'discriminator': 'driver',"
    "  'data': { 'file': 'OptFile', 'raw': 'OptRaw', 'qed': 'OptCow' } }"
    "{ 'struct': 'OptFile', 'data': { 'filename': 'str', '*aio': 'Aio' } }"
    "{ 'struct': 'OptRaw', 'data': { 'file': 'Ref', '*size': 'int' } }"
    "{ 'struct': 'OptBase', 'data': { 'file': 'Ref' } }"
    "{ 'struct': 'OptCow', 'base': 'OptBase', 'data': { '*backing': 'RefOrNull' } }"
    "{ 'alternate': 'Ref', 'data': { 'definition': 'Options', 'reference': 'str' } }"
    "{ 'alternate': 'RefOrNull', 'data': { 'definition': 'Options', 'reference': 'str',"
    "  'null': 'null' } }"
    "{ 'command': 'add', 'data': 'Options', 'boxed': true }"
    "{ 'command': 'stream', 'data': { '*job-id': 'str', 'device': 'str', '*base-node': 'str',"
    "  '*speed': 'int', '*on-error': 'OnError', '*auto-finalize': 'bool', '*ids': ['OnError'],"
    "  '*limit': 'uint64', '*ratio': 'number', '*max-connections': 'uint32', '*depth': 'int8' } }"
    "{ 'struct': 'Info', 'data': { 'id': 'str', '*error': 'str' } }"
    "{ 'command': 'query', 'returns': [ 'Info' ] }"
    "{ 'event': 'CHANGED', 'data': { 'id': 'str', 'status': 'OnError' } }";

static QblkJson *coroutine_fn qmp_co_nothing(const QblkJson *args, GError **errp)
{
    return qblk_json_object();
}

static void setup(void)
{
    static const QmpCommand cmds[] = {
        { "add", qmp_co_nothing }, { "stream", qmp_co_nothing }, { "query", qmp_co_nothing },
    };
    static bool done;

    if (!done) {
        qmp_schema_add(test_schema);
        qmp_schema_add("{ 'command': 'unimplemented' }");
        qmp_register_commands(cmds, G_N_ELEMENTS(cmds));
        qmp_schema_finish();
        done = true;
    }
}

/* The check's message for args under command, or "ok". */
static char *check(const char *command, const char *args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(QblkJson) v = qmp_json_parse(args, &err);

    g_assert_no_error(err);
    if (!qmp_check_args(qmp_schema_command(command), v, &err)) {
        return g_strdup(err->message);
    }
    return g_strdup("ok");
}

static const struct {
    const char *cmd, *args, *msg;
} cases[] = {
    { "stream", "{'device': 'top', 'speed': 8388608, 'on-error': 'stop'}", "ok" },
    { "stream", "{}", "Parameter 'device' is missing" },
    { "stream", "{'device': 'top', 'bogus': 1}", "Parameter 'bogus' is unexpected" },
    { "stream", "{'device': 1}", "Invalid parameter type for 'device', expected: string" },
    { "stream", "{'device': null}", "Invalid parameter type for 'device', expected: string" },
    { "stream", "{'device': 'x', 'speed': '3'}",
      "Invalid parameter type for 'speed', expected: integer" },
    { "stream", "{'device': 'x', 'speed': 1.0}",
      "Invalid parameter type for 'speed', expected: integer" },
    { "stream", "{'device': 'x', 'speed': 18446744073709551615}",
      "Invalid parameter type for 'speed', expected: integer" },
    { "stream", "{'device': 'x', 'limit': 18446744073709551615}", "ok" },
    { "stream", "{'device': 'x', 'ratio': 1}", "ok" },
    { "stream", "{'device': 'x', 'max-connections': 4294967295, 'depth': -128}", "ok" },
    { "stream", "{'device': 'x', 'max-connections': -1}",
      "Parameter 'max-connections' expects uint32_t" },
    { "stream", "{'device': 'x', 'max-connections': 8589934592}",
      "Parameter 'max-connections' expects uint32_t" },
    { "stream", "{'device': 'x', 'max-connections': 18446744073709551615}",
      "Parameter 'max-connections' expects uint32_t" },
    { "stream", "{'device': 'x', 'depth': 128}", "Parameter 'depth' expects int8_t" },
    { "stream", "{'device': 'x', 'ratio': true}",
      "Invalid parameter type for 'ratio', expected: number" },
    { "stream", "{'device': 'x', 'auto-finalize': '3'}",
      "Invalid parameter type for 'auto-finalize', expected: boolean" },
    { "stream", "{'device': 'x', 'on-error': 'bad'}",
      "Parameter 'on-error' does not accept value 'bad'" },
    { "stream", "{'device': 'x', 'on-error': 3}",
      "Invalid parameter type for 'on-error', expected: string" },
    { "stream", "{'device': 'x', 'ids': 'stop'}",
      "Invalid parameter type for 'ids', expected: array" },
    { "stream", "{'device': 'x', 'ids': ['stop', 'x']}",
      "Parameter 'null' does not accept value 'x'" },
    { "stream", "{'device': 'x', 'ids': ['stop', 1]}",
      "Invalid parameter type for 'ids[1]', expected: string" },
    { "add", "{'driver': 'raw', 'node-name': 'r', 'file': {'driver': 'file', 'filename': 'f'}}",
      "ok" },
    { "add", "{}", "Parameter 'driver' is missing" },
    { "add", "{'driver': 3}", "Invalid parameter type for 'driver', expected: string" },
    { "add", "{'driver': 'raw', 'file': {'driver': 'file'}}",
      "Parameter 'file.filename' is missing" },
    { "add", "{'driver': 'raw', 'file': {'driver': 'bogus'}}",
      "Parameter 'driver' does not accept value 'bogus'" },
    { "add", "{'driver': 'raw', 'file': {'driver': 'file', 'filename': 3}}",
      "Invalid parameter type for 'file.filename', expected: string" },
    { "add", "{'driver': 'raw', 'file': {'driver': 'file', 'filename': 'x', 'aio': 'bad'}}",
      "Parameter 'aio' does not accept value 'bad'" },
    { "add", "{'driver': 'raw', 'file': {'driver': 'file', 'filename': 'x', 'bogus': 1}}",
      "Parameter 'file.bogus' is unexpected" },
    { "add", "{'driver': 'raw', 'file': 3}",
      "Invalid parameter type for 'file', expected: Ref" },
    { "add", "{'driver': 'raw', 'file': null}",
      "Invalid parameter type for 'file', expected: Ref" },
    { "add", "{'driver': 'qed', 'file': 'x', 'backing': null}", "ok" },
    { "add", "{'driver': 'qed', 'file': 'x', 'backing': 3}",
      "Invalid parameter type for 'backing', expected: RefOrNull" },
    { "add", "{'driver': 'qed', 'file': 'x', 'cache': 3}",
      "Invalid parameter type for 'cache', expected: object" },
    { "add", "{'driver': 'qed', 'file': 'x', 'cache': {'direct': 1}}",
      "Invalid parameter type for 'cache.direct', expected: boolean" },
    { "add", "{'driver': 'qed', 'file': 'x', 'cache': {'bog': 1}}",
      "Parameter 'cache.bog' is unexpected" },
    { "add", "{'driver': 'qed', 'file': 'x', 'size': 1}", "Parameter 'size' is unexpected" },
    { "query", "{'a': 1}", "Parameter 'a' is unexpected" },
    /* several undeclared: the one qsd 7.2 names (its GHashTable's order) */
    { "query", "{'b': 1, 'a': 2, 'zz': 3, 'device': 4}", "Parameter 'zz' is unexpected" },
};

static void test_check(void)
{
    setup();
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = check(cases[i].cmd, cases[i].args);
        if (strcmp(got, cases[i].msg)) {
            g_test_message("%s %s", cases[i].cmd, cases[i].args);
        }
        g_assert_cmpstr(got, ==, cases[i].msg);
    }
}

static QblkJson *find(QblkJson *list, const char *name)
{
    for (guint i = 0; i < qblk_json_size(list); i++) {
        QblkJson *e = qblk_json_nth(list, i, NULL);
        if (!strcmp(qblk_json_get_string(qblk_json_get(e, "name")), name)) {
            return e;
        }
    }
    return NULL;
}

/* libvirt's probe: stream's arg-type has a member base-node. Plus the
 * shapes of 7.2's SchemaInfo for each meta-type. */
static void test_introspect(void)
{
    g_autoptr(QblkJson) list = NULL;
    QblkJson *cmd, *args, *member = NULL, *e;
    g_autofree char *text = NULL;

    setup();
    list = qmp_schema_introspect();
    cmd = find(list, "stream");
    g_assert_nonnull(cmd);
    g_assert_cmpstr(qblk_json_get_string(qblk_json_get(cmd, "meta-type")), ==, "command");
    args = find(list, qblk_json_get_string(qblk_json_get(cmd, "arg-type")));
    g_assert_nonnull(args);
    for (guint i = 0; i < qblk_json_size(qblk_json_get(args, "members")); i++) {
        QblkJson *m = qblk_json_nth(qblk_json_get(args, "members"), i, NULL);
        if (!strcmp(qblk_json_get_string(qblk_json_get(m, "name")), "base-node")) {
            member = m;
        }
    }
    g_assert_nonnull(member);
    text = qblk_json_to_string(member, false);
    g_assert_cmpstr(text, ==, "{\"name\": \"base-node\", \"default\": null, \"type\": \"str\"}");
    /* uint64 shows as int; the empty return is an object without members */
    g_assert_nonnull(find(list, "int"));
    g_assert_null(find(list, "uint64"));
    e = find(list, qblk_json_get_string(qblk_json_get(cmd, "ret-type")));
    g_clear_pointer(&text, g_free);
    text = qblk_json_to_string(e, false);
    g_assert_true(strstr(text, "\"members\": []") != NULL);
    /* union: tag and variants; alternate: members with types only */
    e = find(list, qblk_json_get_string(qblk_json_get(find(list, "add"), "arg-type")));
    g_assert_cmpstr(qblk_json_get_string(qblk_json_get(e, "tag")), ==, "driver");
    g_assert_cmpuint(qblk_json_size(qblk_json_get(e, "variants")), ==, 3);
    e = find(list, qblk_json_get_string(qblk_json_get(find(list, "query"), "ret-type")));
    g_assert_cmpstr(qblk_json_get_string(qblk_json_get(e, "meta-type")), ==, "array");
    g_assert_null(find(list, "unimplemented"));
    e = find(list, "CHANGED");
    g_assert_cmpstr(qblk_json_get_string(qblk_json_get(e, "meta-type")), ==, "event");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-schema/check", test_check);
    g_test_add_func("/qmp-schema/introspect", test_introspect);
    return g_test_run();
}
