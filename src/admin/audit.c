/* audit.c — placeholder until the audit trail lands (audit.h): records
 * nothing. */
#include "admin/audit.h"

int keel_audit_open(const char *path, char *err, size_t errlen)
{
    (void)path; (void)err; (void)errlen;
    return 0;
}

void keel_audit_close(void) {}

int keel_audit(const char *event, const char *who, const char *fields)
{
    (void)event; (void)who; (void)fields;
    return 0;
}

int keel_audit_verify(const char *path, size_t *records, char *err, size_t errlen)
{
    (void)path; (void)err; (void)errlen;
    *records = 0;
    return 0;
}
