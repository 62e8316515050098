/* test_audit.c — the audit trail (src/admin/audit*.c): records written
 * through keel_audit form a chain that keel_audit_verify accepts; an
 * edited, removed, reordered or truncated record is named by line; a
 * reopened log continues its chain; rotation keeps one chain across two
 * files; fields that would not make one valid JSON line are refused;
 * threads appending at once still make one chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/audit.h"
#include "admin/audit_int.h"
#include "base/sha256.h"
#include "obs/log.h"

static char dir[] = "/tmp/keel-test-audit-XXXXXX";
static char logpath[256];

static int setup(void **state)
{
    (void)state;
    static int n;
    if (n++ == 0 && !mkdtemp(dir))
        return -1;
    snprintf(logpath, sizeof logpath, "%s/audit-%d.jsonl", dir, n);
    unlink(logpath);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keel_audit_close();
    unlink(logpath);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void spill(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Writes n records to a fresh log at logpath. */
static void write_records(int n)
{
    char err[512];
    assert_int_equal(keel_audit_open(logpath, err, sizeof err), 0);
    for (int i = 0; i < n; i++) {
        char fields[64];
        snprintf(fields, sizeof fields, "\"i\":%d,\"note\":\"x\\\"y\"", i);
        assert_int_equal(keel_audit("test.event", "ci-bot", fields), 0);
    }
    keel_audit_close();
}

/* The start of line k (1-based) in text. */
static char *line_at(char *text, int k)
{
    char *p = text;
    for (int i = 1; i < k; i++)
        p = strchr(p, '\n') + 1;
    return p;
}

static void verify_fails(const char *want)
{
    size_t records;
    char err[1024];
    assert_int_not_equal(keel_audit_verify(logpath, &records, err, sizeof err), 0);
    if (!strstr(err, want))
        fail_msg("expected \"%s\" in \"%s\"", want, err);
}

static void chain_is_written_and_verified(void **state)
{
    (void)state;
    write_records(5);
    size_t len, records = 0;
    char *text = slurp(logpath, &len), err[512];
    assert_int_equal(keel_audit_verify(logpath, &records, err, sizeof err), 0);
    assert_int_equal(records, 5);
    /* field order and the first record's prev */
    assert_true(strncmp(text, "{\"seq\":1,\"ts\":\"", 15) == 0);
    assert_non_null(strstr(text, "\"event\":\"test.event\",\"who\":\"ci-bot\",\"i\":0,"));
    char *nl = strchr(text, '\n');
    assert_true(memcmp(nl - 75, ",\"prev\":\"0000000000000000000000000000000000000000000"
                                "000000000000000000000\"}", 75) == 0);
    /* record 2's prev is the hash of line 1's bytes */
    char hex[65];
    keel_sha256_hex(text, (size_t)(nl - text), hex);
    assert_non_null(strstr(nl + 1, hex));
    free(text);
}

static void edited_record_is_named(void **state)
{
    (void)state;
    write_records(5);
    size_t len;
    char *text = slurp(logpath, &len);
    char *l3 = line_at(text, 3);
    char *note = strstr(l3, "\"i\":2");
    note[4] = '7';             /* still valid JSON, other bytes */
    spill(logpath, text, len);
    verify_fails(":4: record 4: prev does not match the SHA-256 of line 3");
    free(text);
}

static void removed_and_reordered_records_are_named(void **state)
{
    (void)state;
    write_records(5);
    size_t len;
    char *text = slurp(logpath, &len);
    char *l2 = line_at(text, 2), *l3 = line_at(text, 3), *l4 = line_at(text, 4);
    /* remove line 3 */
    char *cut = malloc(len);
    size_t a = (size_t)(l3 - text);
    memcpy(cut, text, a);
    memcpy(cut + a, l4, len - (size_t)(l4 - text));
    spill(logpath, cut, len - (size_t)(l4 - l3));
    verify_fails(":3: record 3: seq 4 where 3 was expected (a record before it is missing)");
    /* swap lines 2 and 3 */
    size_t n2 = (size_t)(l3 - l2), n3 = (size_t)(l4 - l3);
    memcpy(cut, text, len);
    memcpy(cut + (l2 - text), l3, n3);
    memcpy(cut + (l2 - text) + n3, l2, n2);
    spill(logpath, cut, len);
    verify_fails(":2: record 2: seq 3 where 2 was expected");
    free(cut);
    free(text);
}

static void bad_json_and_truncation_are_named(void **state)
{
    (void)state;
    write_records(3);
    size_t len;
    char *text = slurp(logpath, &len);
    char *l2 = line_at(text, 2);
    char saved = l2[1];
    l2[1] = 'x';
    spill(logpath, text, len);
    verify_fails(":2: record 2: not a valid record: ");
    l2[1] = saved;
    spill(logpath, text, len - 10);   /* a crash mid-write of record 3 */
    char want[64];
    snprintf(want, sizeof want, ":3: record 3: truncated");
    verify_fails(want);
    snprintf(want, sizeof want, "truncate -s %zu ", (size_t)(line_at(text, 3) - text));
    verify_fails(want);
    /* and open refuses to chain onto it */
    char err[1024];
    assert_int_not_equal(keel_audit_open(logpath, err, sizeof err), 0);
    assert_non_null(strstr(err, "refusing to append"));
    assert_non_null(strstr(err, "record 3: truncated"));
    free(text);
}

static void reopened_log_continues_its_chain(void **state)
{
    (void)state;
    write_records(2);
    write_records(2);
    size_t records;
    char err[512];
    assert_int_equal(keel_audit_verify(logpath, &records, err, sizeof err), 0);
    assert_int_equal(records, 4);
    size_t len;
    char *text = slurp(logpath, &len);
    assert_true(strncmp(line_at(text, 4), "{\"seq\":4,", 9) == 0);
    free(text);
}

static void bad_fields_are_refused(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(keel_audit_open(logpath, err, sizeof err), 0);
    assert_int_not_equal(keel_audit("x.y", "a", "\"k\":"), 0);
    assert_int_not_equal(keel_audit("x.y", "a", "\"k\":\"line\nbreak\""), 0);
    assert_int_not_equal(keel_audit("x.y", "a", "\"seq\":9"), 0);
    assert_int_not_equal(keel_audit("Bad Event", "a", NULL), 0);
    assert_int_equal(keel_audit("x.y", "who \"quoted\"", "\"k\":[1,{\"a\":null}]"), 0);
    keel_audit_close();
    size_t records;
    assert_int_equal(keel_audit_verify(logpath, &records, err, sizeof err), 0);
    assert_int_equal(records, 1);
    /* no log open: a no-op */
    assert_int_equal(keel_audit("x.y", "a", NULL), 0);
}

static void rotation_keeps_one_chain(void **state)
{
    (void)state;
    write_records(3);
    char err[1024], archive[512], out[512];
    snprintf(archive, sizeof archive, "%s.1", logpath);
    unlink(archive);
    /* a writer that has the log open follows the rotation */
    assert_int_equal(keel_audit_open(logpath, err, sizeof err), 0);
    assert_int_equal(keel_audit_rotate(logpath, archive, "cli", out, sizeof out, err,
                                       sizeof err), 0);
    assert_string_equal(out, archive);
    assert_int_equal(keel_audit("after.rotate", "system", NULL), 0);
    keel_audit_close();
    unsigned long long seq = 0;
    char hash[65];
    memset(hash, '0', 64);
    hash[64] = '\0';
    size_t records;
    assert_int_equal(keel_audit_verify_chain(archive, &seq, hash, &records, err, sizeof err),
                     0);
    assert_int_equal(records, 3);
    assert_int_equal(keel_audit_verify_chain(logpath, &seq, hash, &records, err, sizeof err),
                     0);
    assert_int_equal(records, 2);
    assert_int_equal(seq, 5);
    /* alone, the new file verifies (it starts with audit.rotated) */
    assert_int_equal(keel_audit_verify(logpath, &records, err, sizeof err), 0);
    /* a file renamed away by hand: the writer starts the new one with a link */
    assert_int_equal(keel_audit_open(logpath, err, sizeof err), 0);
    char moved[512];
    snprintf(moved, sizeof moved, "%s.2", logpath);
    assert_int_equal(rename(logpath, moved), 0);
    assert_int_equal(keel_audit("after.rename", "system", NULL), 0);
    keel_audit_close();
    seq = 0;
    memset(hash, '0', 64);
    assert_int_equal(keel_audit_verify_chain(archive, &seq, hash, &records, err, sizeof err),
                     0);
    assert_int_equal(keel_audit_verify_chain(moved, &seq, hash, &records, err, sizeof err), 0);
    assert_int_equal(keel_audit_verify_chain(logpath, &seq, hash, &records, err, sizeof err),
                     0);
    assert_int_equal(seq, 7);
    /* out of order, the link is named */
    seq = 0;
    memset(hash, '0', 64);
    assert_int_equal(keel_audit_verify_chain(archive, &seq, hash, &records, err, sizeof err),
                     0);
    assert_int_not_equal(keel_audit_verify_chain(logpath, &seq, hash, &records, err,
                                                 sizeof err), 0);
    assert_non_null(strstr(err, ":1: record 1: seq 6 where 4 was expected"));
    unlink(archive);
    unlink(moved);
}

static void *append_many(void *arg)
{
    for (int i = 0; i < 50; i++)
        if (keel_audit("thread.event", (const char *)arg, "\"i\":1"))
            return (void *)1;
    return NULL;
}

static void threads_append_one_chain(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(keel_audit_open(logpath, err, sizeof err), 0);
    pthread_t t[4];
    static const char *const who[] = { "a", "b", "c", "d" };
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, append_many, (void *)who[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_null(rv);
    }
    keel_audit_close();
    size_t records;
    assert_int_equal(keel_audit_verify(logpath, &records, err, sizeof err), 0);
    assert_int_equal(records, 200);
}

static void record_parser(void **state)
{
    (void)state;
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    char line[512], why[256];
    audit_record r;
    snprintf(line, sizeof line, "{\"seq\":7,\"ts\":\"t\",\"event\":\"a.b\",\"who\":\"w\","
             "\"x\":-1.5e3,\"y\":[true,false,null,\"\\u00e9\"],\"prev\":\"%s\"}", zeros);
    assert_int_equal(audit_record_parse(line, strlen(line), &r, why, sizeof why), 0);
    assert_int_equal(r.seq, 7);
    assert_string_equal(r.event, "a.b");
    assert_string_equal(r.prev, zeros);
    static const char *const bad[] = {
        "{\"ts\":\"t\",\"seq\":1,\"event\":\"a\",\"who\":\"w\",\"prev\":\"%s\"}",
        "{\"seq\":0,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"prev\":\"%s\"}",
        "{\"seq\":01,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"prev\":\"%s\"}",
        "{\"seq\":1,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"prev\":\"%s\",\"z\":1}",
        "{\"seq\":1,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"prev\":\"%s\"} ",
        "{\"seq\":1,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"x\":01,\"prev\":\"%s\"}",
        "{\"seq\":1,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"x\":\"\\q\",\"prev\":\"%s\"}",
        "{\"seq\":1,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"who\":\"v\",\"prev\":\"%s\"}",
        "{\"seq\":1,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"prev\":\"%.63s\"}",
        "{\"seq\":1,\"ts\":\"t\",\"event\":\"a\",\"who\":\"w\",\"x\":[1,],\"prev\":\"%s\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(line, sizeof line, bad[i], zeros);
        if (audit_record_parse(line, strlen(line), &r, why, sizeof why) == 0)
            fail_msg("accepted %s", line);
    }
}

int main(void)
{
    keel_log_min = (keel_log_level)(KEEL_LOG_ERROR + 1);   /* refusals are expected here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(chain_is_written_and_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(edited_record_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_and_reordered_records_are_named, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_json_and_truncation_are_named, setup, teardown),
        cmocka_unit_test_setup_teardown(reopened_log_continues_its_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_fields_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(rotation_keeps_one_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(threads_append_one_chain, setup, teardown),
        cmocka_unit_test(record_parser),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return failed;
}
