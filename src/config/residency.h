/* residency.h — data-residency rules (docs/config.md "Data residency"):
 * a store with `regions` may be opened only by an instance whose `region`
 * is one of them, and its data may reach (by a kv grant or through
 * component calls, either way) only components whose `residency`, when
 * given, lies inside them. Every denial is counted, and recorded in the
 * audit trail (residency.denied) when the process has one open. */
#ifndef KEEL_CONFIG_RESIDENCY_H
#define KEEL_CONFIG_RESIDENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/manifest.h"

/* 0 when this instance (m->region) may open store s; else KEEL_EINVAL and
 * "PATH:LINE:COL: residency: store S may live only in regions [...], but
 * this instance's region is R ..." in err. Counts a denial. */
int keel_residency_store_region(const keel_manifest *m, const keel_store_cfg *s, char *err,
                                size_t errlen);

/* Checks every store (the region rule too when check_region) and calls
 * report with one line per problem ("PATH:LINE:COL: residency: ...; flow:
 * store S -> a (kv grant) -> b (a calls b: payload)"). Returns the number
 * of problems, each counted as a denial. */
int keel_residency_check(const keel_manifest *m, bool check_region,
                         void (*report)(void *arg, const char *line), void *arg);

/* Prints, for each store, every component that can read its data and how
 * (keel check --explain-residency). */
void keel_residency_explain(const keel_manifest *m, FILE *out);

/* Residency denials since the process started. */
unsigned long keel_residency_denials(void);

#endif
