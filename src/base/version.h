/* version.h — Keel's version, part of every compile-cache key. */
#ifndef KEEL_BASE_VERSION_H
#define KEEL_BASE_VERSION_H
#define KEEL_VERSION "0.1.0"
#endif
