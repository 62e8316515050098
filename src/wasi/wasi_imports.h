/* wasi_imports.h — prototypes of the wasi_snapshot_preview1 host functions,
 * under the symbol names wasm2c 1.0.32 gives the imports (i32 -> uint32_t,
 * i64 -> uint64_t). ctx is really a keel_host_ctx * (engine/host_abi.h).
 * Every function returns a WASI errno (wasi_int.h WASI_E*) except proc_exit.
 * Definitions live in wasi.c (args, env, clocks, random, proc, sched, sock),
 * wasi_fd.c (fd_*), wasi_fs.c (path_*) and wasi_poll.c (poll_oneoff). */
#ifndef KEEL_WASI_IMPORTS_H
#define KEEL_WASI_IMPORTS_H

#include <stdint.h>

#include "engine/host_abi.h"

struct Z_wasi_snapshot_preview1_instance_t;
#define WASI_CTX struct Z_wasi_snapshot_preview1_instance_t *ctx
#define WASI_FN(name) KEEL_HOST_EXPORT Z_wasi_snapshot_preview1Z_##name

uint32_t WASI_FN(args_get)(WASI_CTX, uint32_t argv, uint32_t argv_buf);
uint32_t WASI_FN(args_sizes_get)(WASI_CTX, uint32_t argc_out, uint32_t size_out);
uint32_t WASI_FN(environ_get)(WASI_CTX, uint32_t environ, uint32_t environ_buf);
uint32_t WASI_FN(environ_sizes_get)(WASI_CTX, uint32_t count_out, uint32_t size_out);
uint32_t WASI_FN(clock_res_get)(WASI_CTX, uint32_t id, uint32_t res_out);
uint32_t WASI_FN(clock_time_get)(WASI_CTX, uint32_t id, uint64_t precision, uint32_t time_out);
uint32_t WASI_FN(fd_advise)(WASI_CTX, uint32_t fd, uint64_t offset, uint64_t len, uint32_t advice);
uint32_t WASI_FN(fd_allocate)(WASI_CTX, uint32_t fd, uint64_t offset, uint64_t len);
uint32_t WASI_FN(fd_close)(WASI_CTX, uint32_t fd);
uint32_t WASI_FN(fd_datasync)(WASI_CTX, uint32_t fd);
uint32_t WASI_FN(fd_fdstat_get)(WASI_CTX, uint32_t fd, uint32_t stat_out);
uint32_t WASI_FN(fd_fdstat_set_flags)(WASI_CTX, uint32_t fd, uint32_t flags);
uint32_t WASI_FN(fd_fdstat_set_rights)(WASI_CTX, uint32_t fd, uint64_t base, uint64_t inheriting);
uint32_t WASI_FN(fd_filestat_get)(WASI_CTX, uint32_t fd, uint32_t stat_out);
uint32_t WASI_FN(fd_filestat_set_size)(WASI_CTX, uint32_t fd, uint64_t size);
uint32_t WASI_FN(fd_filestat_set_times)(WASI_CTX, uint32_t fd, uint64_t atim, uint64_t mtim, uint32_t fstflags);
uint32_t WASI_FN(fd_pread)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint64_t offset, uint32_t nread_out);
uint32_t WASI_FN(fd_prestat_get)(WASI_CTX, uint32_t fd, uint32_t prestat_out);
uint32_t WASI_FN(fd_prestat_dir_name)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len);
uint32_t WASI_FN(fd_pwrite)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint64_t offset, uint32_t nwritten_out);
uint32_t WASI_FN(fd_read)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nread_out);
uint32_t WASI_FN(fd_readdir)(WASI_CTX, uint32_t fd, uint32_t buf, uint32_t buf_len, uint64_t cookie, uint32_t bufused_out);
uint32_t WASI_FN(fd_renumber)(WASI_CTX, uint32_t fd, uint32_t to);
uint32_t WASI_FN(fd_seek)(WASI_CTX, uint32_t fd, uint64_t offset, uint32_t whence, uint32_t newoffset_out);
uint32_t WASI_FN(fd_sync)(WASI_CTX, uint32_t fd);
uint32_t WASI_FN(fd_tell)(WASI_CTX, uint32_t fd, uint32_t offset_out);
uint32_t WASI_FN(fd_write)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nwritten_out);
uint32_t WASI_FN(path_create_directory)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len);
uint32_t WASI_FN(path_filestat_get)(WASI_CTX, uint32_t fd, uint32_t flags, uint32_t path, uint32_t path_len, uint32_t stat_out);
uint32_t WASI_FN(path_filestat_set_times)(WASI_CTX, uint32_t fd, uint32_t flags, uint32_t path, uint32_t path_len, uint64_t atim, uint64_t mtim, uint32_t fstflags);
uint32_t WASI_FN(path_link)(WASI_CTX, uint32_t old_fd, uint32_t old_flags, uint32_t old_path, uint32_t old_path_len, uint32_t new_fd, uint32_t new_path, uint32_t new_path_len);
uint32_t WASI_FN(path_open)(WASI_CTX, uint32_t fd, uint32_t dirflags, uint32_t path, uint32_t path_len, uint32_t oflags, uint64_t rights_base, uint64_t rights_inheriting, uint32_t fdflags, uint32_t fd_out);
uint32_t WASI_FN(path_readlink)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len, uint32_t buf, uint32_t buf_len, uint32_t bufused_out);
uint32_t WASI_FN(path_remove_directory)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len);
uint32_t WASI_FN(path_rename)(WASI_CTX, uint32_t fd, uint32_t old_path, uint32_t old_path_len, uint32_t new_fd, uint32_t new_path, uint32_t new_path_len);
uint32_t WASI_FN(path_symlink)(WASI_CTX, uint32_t old_path, uint32_t old_path_len, uint32_t fd, uint32_t new_path, uint32_t new_path_len);
uint32_t WASI_FN(path_unlink_file)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len);
uint32_t WASI_FN(poll_oneoff)(WASI_CTX, uint32_t in, uint32_t out, uint32_t nsubscriptions, uint32_t nevents_out);
void     WASI_FN(proc_exit)(WASI_CTX, uint32_t code);
uint32_t WASI_FN(proc_raise)(WASI_CTX, uint32_t sig);
uint32_t WASI_FN(sched_yield)(WASI_CTX);
uint32_t WASI_FN(random_get)(WASI_CTX, uint32_t buf, uint32_t buf_len);
uint32_t WASI_FN(sock_accept)(WASI_CTX, uint32_t fd, uint32_t flags, uint32_t fd_out);
uint32_t WASI_FN(sock_recv)(WASI_CTX, uint32_t fd, uint32_t ri_data, uint32_t ri_data_len, uint32_t ri_flags, uint32_t ro_datalen_out, uint32_t ro_flags_out);
uint32_t WASI_FN(sock_send)(WASI_CTX, uint32_t fd, uint32_t si_data, uint32_t si_data_len, uint32_t si_flags, uint32_t so_datalen_out);
uint32_t WASI_FN(sock_shutdown)(WASI_CTX, uint32_t fd, uint32_t how);

#endif
