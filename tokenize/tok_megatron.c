/* tok_megatron.c: `tokenmill export megatron`: the token shards as Megatron-LM indexed datasets.
 *
 * The format (megatron/core/datasets/indexed_dataset.py, "MMIDIDX" version 1), little-endian:
 *   PREFIX.bin  every sequence's tokens, back to back, as uint16 (dtype code 8) when every id
 *               is below 65536, else int32 (code 4)
 *   PREFIX.idx  9-byte magic "MMIDIDX\0\0", u64 version 1, u8 dtype code, u64 sequence count
 *               S, u64 document-index count D, int32 lengths[S] (tokens per sequence), int64
 *               pointers[S] (byte offset of each sequence in .bin), int64 document_indices[D]
 *               (the sequence index each document starts at, then S)
 * One document is one sequence here (its tokens and the end-of-text token, as Megatron's own
 * preprocess_data.py --append-eod writes them), so document_indices is 0, 1, ..., S. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tok_run.h"
#include "tokenize.h"
#include "tm_db.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_progress.h"
#include "tm_stats.h"

static const unsigned char idx_magic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};

struct dataset {
    const struct tok_corpus *c;
    FILE *bin;
    char *bin_path, *bin_part;
    int split;
    unsigned dtype; /* bytes per token in .bin: 2 or 4 */
    uint32_t *lengths;
    uint64_t *pointers;
    size_t n, cap;
    uint64_t bytes;
    uint32_t *scratch;
    size_t scratch_cap;
    const struct tok_shard *shard;
    int domain;
    int failed;
    struct tm_progress *progress;
};

static int put_doc(void *ctx, uint64_t doc_id, uint64_t pos, uint32_t ntokens)
{
    struct dataset *ds = ctx;
    (void)doc_id;
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? ds->cap * 2 : 4096;
        ds->lengths = tm_xreallocarray(ds->lengths, ds->cap, sizeof(uint32_t));
        ds->pointers = tm_xreallocarray(ds->pointers, ds->cap, sizeof(uint64_t));
    }
    ds->lengths[ds->n] = ntokens;
    ds->pointers[ds->n] = ds->bytes;
    ds->n++;
    /* Same width as the shard: copy straight from the map, a chunk at a time. */
    const struct tok_shard_meta *m = tok_shard_get_meta(ds->shard);
    uint64_t end = pos + ntokens;
    while (pos < end) {
        uint64_t in_chunk = m->chunk_tokens - pos % m->chunk_tokens;
        size_t take = (size_t)(end - pos < in_chunk ? end - pos : in_chunk);
        if (m->dtype == ds->dtype) {
            const unsigned char *p = tok_shard_bytes(ds->shard, ds->split, ds->domain, pos, take);
            if (fwrite(p, ds->dtype, take, ds->bin) != take)
                return TM_ERR_IO;
        } else {
            if (ds->scratch_cap < take) {
                ds->scratch = tm_xreallocarray(ds->scratch, take, sizeof(uint32_t));
                ds->scratch_cap = take;
            }
            int rc = tok_shard_read(ds->shard, ds->split, ds->domain, pos, take, ds->scratch);
            if (rc)
                return rc;
            if (fwrite(ds->scratch, 4, take, ds->bin) != take)
                return TM_ERR_IO;
        }
        pos += take;
    }
    ds->bytes += (uint64_t)ntokens * ds->dtype;
    tm_progress_add(ds->progress, 1, (uint64_t)ntokens * ds->dtype);
    return TM_OK;
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? TM_OK : TM_ERR_IO;
}

static int close_synced(FILE *f, const char *path)
{
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad) {
        tm_log_error("%s: write failed: %s", path, strerror(errno));
        return TM_ERR_IO;
    }
    return TM_OK;
}

static int write_idx(const struct dataset *ds, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        tm_log_error("%s: %s", path, strerror(errno));
        return TM_ERR_IO;
    }
    unsigned char hdr[9 + 8 + 1 + 8 + 8], *p = hdr;
    memcpy(p, idx_magic, 9);
    tm_le64_put(p + 9, 1);
    p[17] = ds->dtype == 2 ? 8 : 4;
    tm_le64_put(p + 18, ds->n);
    tm_le64_put(p + 26, ds->n + 1);
    int rc = write_all(f, hdr, sizeof hdr);
    unsigned char b[8];
    for (size_t i = 0; i < ds->n && !rc; i++) {
        tm_le32_put(b, ds->lengths[i]);
        rc = write_all(f, b, 4);
    }
    for (size_t i = 0; i < ds->n && !rc; i++) {
        tm_le64_put(b, ds->pointers[i]);
        rc = write_all(f, b, 8);
    }
    for (size_t i = 0; i <= ds->n && !rc; i++) {
        tm_le64_put(b, i);
        rc = write_all(f, b, 8);
    }
    int crc = close_synced(f, path);
    return rc ? rc : crc;
}

/* Writes one dataset: split `split`, the domains in `mask`, to PREFIX.bin / .idx. */
static int export_one(const struct tok_corpus *c, int split, unsigned mask, const char *prefix,
                      struct tm_progress *progress, cJSON *stats)
{
    struct dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.c = c;
    ds.split = split;
    ds.progress = progress;
    ds.dtype = tok_corpus_meta(c)->id_end <= 65536 ? 2 : 4;
    size_t plen = strlen(prefix) + 16;
    char *idx_path = tm_xmalloc(plen), *idx_part = tm_xmalloc(plen + 8);
    ds.bin_path = tm_xmalloc(plen);
    ds.bin_part = tm_xmalloc(plen + 8);
    snprintf(ds.bin_path, plen, "%s.bin", prefix);
    snprintf(ds.bin_part, plen + 8, "%s.bin.partial", prefix);
    snprintf(idx_path, plen, "%s.idx", prefix);
    snprintf(idx_part, plen + 8, "%s.idx.partial", prefix);
    int rc = TM_OK;
    ds.bin = fopen(ds.bin_part, "wb");
    if (!ds.bin) {
        tm_log_error("%s: %s", ds.bin_part, strerror(errno));
        rc = TM_ERR_IO;
        goto out;
    }
    for (size_t i = 0; i < tok_corpus_shards(c) && !rc; i++)
        for (int d = 0; d < TM_DOMAIN_COUNT && !rc; d++) {
            if (!(mask & (1u << d)))
                continue;
            ds.shard = tok_corpus_shard(c, i);
            ds.domain = d;
            rc = tok_shard_foreach_doc(ds.shard, split, d, put_doc, &ds);
        }
    if (rc == TM_ERR_IO)
        tm_log_error("%s: write failed: %s", ds.bin_part, strerror(errno));
    int crc = close_synced(ds.bin, ds.bin_part);
    if (!rc)
        rc = crc;
    if (!rc)
        rc = write_idx(&ds, idx_part);
    /* .bin first: a reader that finds the .idx finds the .bin it indexes. */
    if (!rc && (rename(ds.bin_part, ds.bin_path) != 0 || rename(idx_part, idx_path) != 0)) {
        tm_log_error("%s: cannot rename into place: %s", prefix, strerror(errno));
        rc = TM_ERR_IO;
    }
    if (rc) {
        unlink(ds.bin_part);
        unlink(idx_part);
    } else {
        cJSON *o = tm_stats_obj(stats, prefix);
        tm_stats_set_num(o, "sequences", (double)ds.n);
        tm_stats_set_num(o, "tokens", (double)(ds.bytes / ds.dtype));
        tm_stats_set_num(o, "dtype_bytes", ds.dtype);
        printf("export: %s.{bin,idx}: %zu documents, %" PRIu64 " tokens\n", prefix, ds.n,
               ds.bytes / ds.dtype);
    }
out:
    free(ds.lengths);
    free(ds.pointers);
    free(ds.scratch);
    free(ds.bin_path);
    free(ds.bin_part);
    free(idx_path);
    free(idx_part);
    return rc;
}

int tok_export_megatron(const struct tok_export_options *opt, int progress, cJSON *stats)
{
    struct tok_corpus *c;
    int rc = tok_corpus_open(opt->workdir, 0, &c);
    if (rc)
        return rc;
    /* The prefix's directory is created, as Megatron's own preprocessing does. */
    char *dir = tm_xstrdup(opt->out);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        rc = tm_mkdirs(dir);
    }
    free(dir);
    if (rc) {
        tok_corpus_free(c);
        return rc;
    }
    struct tm_progress pr;
    tm_progress_init(&pr, "export", 0, 0, progress, 0);
    cJSON *o = tm_stats_obj(stats, "export");
    size_t plen = strlen(opt->out) + 32;
    char *prefix = tm_xmalloc(plen);
    for (int s = 0; s < TOK_SPLIT_COUNT && !rc; s++) {
        if (opt->split != TOK_SPLIT_COUNT && opt->split != s)
            continue;
        if (!opt->by_domain) {
            snprintf(prefix, plen, "%s_%s", opt->out, tok_split_names[s]);
            rc = export_one(c, s, (1u << TM_DOMAIN_COUNT) - 1, prefix, &pr, o);
            continue;
        }
        for (int d = 0; d < TM_DOMAIN_COUNT && !rc; d++) {
            if (!tok_corpus_docs(c, s, d))
                continue;
            snprintf(prefix, plen, "%s_%s_%s", opt->out, tok_split_names[s], tm_domain_name(d));
            rc = export_one(c, s, 1u << d, prefix, &pr, o);
        }
    }
    tm_progress_finish(&pr);
    free(prefix);
    tok_corpus_free(c);
    return rc;
}
