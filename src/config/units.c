/* units.c — see units.h. */
#include "config/units.h"

#include <ctype.h>
#include <string.h>

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit;

static const unit size_units[] = {
    { "", 1 }, { "B", 1 },
    { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 }, { "TiB", 1ull << 40 },
    { "KB", 1000ull }, { "MB", 1000000ull }, { "GB", 1000000000ull }, { "TB", 1000000000000ull },
    { NULL, 0 },
};

static const unit time_units[] = {
    { "ns", 1 }, { "us", 1000ull }, { "ms", 1000000ull }, { "s", 1000000000ull },
    { "m", 60000000000ull }, { "h", 3600000000000ull }, { NULL, 0 },
};

static const unit *find_unit(const unit *table, const char *name)
{
    for (; table->name; table++)
        if (strcmp(table->name, name) == 0)
            return table;
    return NULL;
}

int keel_parse_size(const char *s, uint64_t *bytes)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    const unit *u = find_unit(size_units, s);
    if (!u || (v && u->mult > UINT64_MAX / v))
        return -1;
    *bytes = v * u->mult;
    return 0;
}

int keel_parse_duration(const char *s, uint64_t *ns)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    uint64_t whole = 0, frac = 0, scale = 1;
    for (; isdigit((unsigned char)*s); s++) {
        if (whole > (UINT64_MAX - 9) / 10)
            return -1;
        whole = whole * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        for (; isdigit((unsigned char)*s); s++) {
            if (scale < 1000000000ull) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
        }
    }
    const unit *u = find_unit(time_units, s);
    if (!u || (whole && u->mult > UINT64_MAX / whole))
        return -1;
    *ns = whole * u->mult + frac * u->mult / scale;
    return 0;
}
