/* ing_run: the ingest driver.
 *
 * Why batches: one LMDB commit per small file would cost an fsync each (thousands of headers in
 * /usr/include), one commit per input would hold a 10 GB archive in one transaction. A batch is
 * one write transaction: documents from any number of inputs are encoded straight into it as
 * they are read, and the progress of every input it touched is written with them at commit, so
 * the store never holds a document whose input record does not account for it. The map is grown
 * before a batch opens, since streamed documents cannot be replayed after a full map (writing
 * straight into the transaction instead of through a buffer measured 10% faster on /usr/include,
 * bench/ingest_bench.sh).
 *
 * Why "units": a resumed input must skip exactly what was committed. Every record and every
 * problem a reader meets is one unit, counted in reading order; the input record stores how
 * many were committed, and a rerun ignores that many before writing again. */
#include "ing_run.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "../core/tm_buf.h"
#include "../core/tm_db.h"
#include "../core/tm_doc.h"
#include "../core/tm_err.h"
#include "../core/tm_fs.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"
#include "../core/tm_opt.h"
#include "../core/tm_progress.h"
#include "../core/tm_stats.h"
#include "../core/tm_store.h"
#include "ing_internal.h"

/* Nested compressed members (a .jsonl.gz inside a tar) are opened again through libarchive;
 * deeper nesting than this is treated as binary, which bounds the work per input. */
#define ING_MAX_NESTING 3
/* Bytes read ahead to decide a member's kind (HTML and WARC starts, roff requests, magic). */
#define ING_HEAD_BYTES 4096
/* Errors listed in the statistics JSON; all of them are counted and logged. */
#define ING_MAX_ERROR_LIST 1000
#define ING_READ_BLOCK     (1u << 20)
/* A damaged archive is reopened to read the members after each fatally damaged one; this
 * bounds the passes over one input (each pass may decompress everything before the damage). */
#define ING_MAX_REOPEN 16

struct batch_input {
    char *key;
    struct tm_input rec;
};

/* Documents go straight into an open write transaction as they are read (no second copy of the
 * text); the input records that account for them are kept here and written at commit, in the
 * same transaction. */
struct batch {
    MDB_txn *txn; /* the open write transaction, or NULL */
    size_t ndocs, doc_bytes;
    struct batch_input *inputs;
    size_t ninputs, inputs_cap;
};

/* The input being read. */
struct cur_input {
    const char *key;     /* store key (absolute path or tokenmill:NAME) */
    const char *display; /* path as given, for messages */
    struct tm_input rec;
    uint64_t skip_units; /* units committed by an earlier, interrupted run */
    int active;
};

struct ingest {
    const struct ing_config *cfg;
    struct tm_store store;
    int forced_domain; /* -1 to detect */
    uint32_t gen_no;   /* 0 until a generation is open */
    struct tm_gen gen;
    int gen_dirty;     /* gen changed since the last commit */
    uint32_t last_gen; /* the highest generation in the store when the run began */
    struct batch batch;
    struct cur_input cur;
    struct tm_buf member; /* raw bytes of the member being read */
    struct tm_buf text;   /* its normalized text */
    struct tm_buf conv;   /* HTML/roff reduced to text */
    struct tm_buf source; /* source URI being built */
    struct ing_norm_stats norm;
    struct tm_progress progress;
    /* counters */
    uint64_t docs[TM_DOMAIN_COUNT], bytes[TM_DOMAIN_COUNT];
    uint64_t input_bytes, errors, problems;
    cJSON *stats, *skipped, *inputs_stats, *error_list, *counts;
    /* the last libarchive error met while reading data, for messages, and whether it was
     * fatal (the archive can give nothing more) */
    char arc_err[256];
    int arc_fatal;
    /* Reopening a damaged top-level archive to read the members after the damage: members
     * to pass over, whether this is a reopened pass, and the 1-based index of the member
     * whose fatal error ended the last pass (0 for none). */
    uint64_t skip_members;
    int reopened;
    char *readbuf[ING_MAX_NESTING + 1];
    /* inputs met in this run (seen_before) */
    uint64_t *seen;
    size_t seen_count, seen_cap;
    uint64_t failed_member;
};

/* ---- Statistics and messages ----------------------------------------------------------- */

static void note_error(struct ingest *ig, const char *where, uint64_t position,
                       const char *pos_kind, const char *message)
{
    ig->errors++;
    if (pos_kind)
        tm_log_warn("%s: %s %llu: %s", where, pos_kind, (unsigned long long)position, message);
    else
        tm_log_warn("%s: %s", where, message);
    if ((size_t)cJSON_GetArraySize(ig->error_list) < ING_MAX_ERROR_LIST) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "file", where);
        if (pos_kind) {
            cJSON_AddStringToObject(e, "position_kind", pos_kind);
            cJSON_AddNumberToObject(e, "position", (double)position);
        }
        cJSON_AddStringToObject(e, "message", message);
        cJSON_AddItemToArray(ig->error_list, e);
    }
}

static void note_skip(struct ingest *ig, const char *reason)
{
    tm_stats_add(ig->skipped, reason, 1);
}

/* ---- Batches and commits --------------------------------------------------------------- */

static void batch_init(struct batch *b)
{
    memset(b, 0, sizeof(*b));
}

static void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->ninputs; i++)
        free(b->inputs[i].key);
    b->ninputs = 0;
    b->ndocs = 0;
    b->doc_bytes = 0;
}

/* Ends the batch without committing: what it wrote is gone, as after kill -9. */
static void batch_abort(struct batch *b)
{
    if (b->txn)
        mdb_txn_abort(b->txn);
    b->txn = NULL;
    batch_clear(b);
}

static void batch_release(struct batch *b)
{
    batch_abort(b);
    free(b->inputs);
}

static void batch_add_input(struct batch *b, const char *key, const struct tm_input *rec)
{
    /* A later record for the same key replaces the earlier one in this batch. */
    for (size_t i = 0; i < b->ninputs; i++) {
        if (strcmp(b->inputs[i].key, key) == 0) {
            b->inputs[i].rec = *rec;
            return;
        }
    }
    if (b->ninputs == b->inputs_cap) {
        b->inputs_cap = b->inputs_cap ? 2 * b->inputs_cap : 16;
        b->inputs = tm_xreallocarray(b->inputs, b->inputs_cap, sizeof(*b->inputs));
    }
    b->inputs[b->ninputs].key = tm_xstrdup(key);
    b->inputs[b->ninputs].rec = *rec;
    b->ninputs++;
}

/* Slack for LMDB's own pages (branch and leaf pages, copies made by copy-on-write). */
#define ING_MAP_SLACK ((size_t)64 << 20)

/* Opens the batch's write transaction, with room in the map for a whole batch: documents
 * streamed into it cannot be replayed, so the map must not fill up half way. */
static int batch_open(struct ingest *ig)
{
    if (ig->batch.txn)
        return TM_OK;
    size_t room = 2 * (ig->cfg->batch_bytes + ig->cfg->max_doc_size) + ING_MAP_SLACK;
    return tm_db_begin_write(&ig->store.db, room, &ig->batch.txn);
}

/* Commits the batch: its documents, the records of the inputs they came from (the current one
 * as a partial record), and the generation record, in one transaction. */
static int commit(struct ingest *ig)
{
    struct batch *b = &ig->batch;
    struct tm_db *db = &ig->store.db;
    int rc;
    if (ig->cur.active && ig->cur.rec.units > ig->cur.skip_units) {
        struct tm_input rec = ig->cur.rec;
        rec.state = TM_INPUT_PARTIAL;
        batch_add_input(b, ig->cur.key, &rec);
    }
    if (!b->txn && b->ninputs == 0 && !ig->gen_dirty)
        return TM_OK;
    if ((rc = batch_open(ig)))
        goto fail;
    for (size_t i = 0; i < b->ninputs; i++) {
        unsigned char rec[TM_INPUT_REC_SIZE];
        tm_input_encode(&b->inputs[i].rec, rec);
        rc = tm_db_put(db, b->txn, TM_STORE_INPUTS, b->inputs[i].key, strlen(b->inputs[i].key), rec,
                       sizeof(rec), 0);
        if (rc)
            goto fail;
    }
    if (ig->gen_no) {
        unsigned char key[4], rec[TM_GEN_REC_SIZE];
        tm_be32_put(key, ig->gen_no);
        tm_gen_encode(&ig->gen, rec);
        rc = tm_db_put(db, b->txn, TM_STORE_GENS, key, sizeof(key), rec, sizeof(rec), 0);
        if (rc)
            goto fail;
    }
    rc = tm_db_commit(db, b->txn);
    b->txn = NULL;
    if (rc)
        goto fail;
    tm_log_debug("committed %zu documents, %zu input records", b->ndocs, b->ninputs);
    batch_clear(b);
    ig->gen_dirty = 0;
    return TM_OK;
fail:
    tm_log_error("%s: cannot commit a batch of %zu documents: %s", ig->cfg->workdir, b->ndocs,
                 tm_strerror(rc));
    batch_abort(b);
    return rc;
}

static int maybe_commit(struct ingest *ig)
{
    const struct batch *b = &ig->batch;
    if (b->doc_bytes >= ig->cfg->batch_bytes || (long)b->ndocs >= ig->cfg->batch_docs)
        return commit(ig);
    return TM_OK;
}

/* Opens a new generation when none is open. Its record is written with the next commit. */
static void ensure_generation(struct ingest *ig)
{
    if (ig->gen_no)
        return;
    ig->gen_no = ig->last_gen + 1;
    memset(&ig->gen, 0, sizeof(ig->gen));
    ig->gen.state = TM_GEN_OPEN;
    ig->gen.started = (int64_t)time(NULL);
    ig->gen_dirty = 1;
    tm_log_info("opening generation %u", ig->gen_no);
}

/* ---- Documents ------------------------------------------------------------------------- */

/* Takes one unit slot; returns 1 when the unit was committed by an earlier run and must be
 * skipped. */
static int unit_begin(struct ingest *ig)
{
    uint64_t u = ig->cur.rec.units++;
    return u < ig->cur.skip_units;
}

/* Normalizes, classifies and writes one document into the batch's transaction. `raw` is the text as
 * found; `name` hints kind and language; `domain` < 0 means detect. */
static int emit_doc(struct ingest *ig, const char *raw, size_t raw_len, const char *meta,
                    size_t meta_len, int domain, const char *lang, const char *name,
                    const char *source)
{
    int rc;
    const char *text = raw;
    size_t text_len = raw_len;
    /* Clean text (valid UTF-8, no NUL, no CR) is what normalization would copy unchanged: use
     * it in place. */
    if (!ing_is_clean(raw, raw_len)) {
        tm_buf_reset(&ig->text);
        rc = ing_normalize(raw, raw_len, &ig->text, &ig->norm);
        if (rc == TM_ERR_TOOBIG) {
            note_skip(ig, "too_large");
            return TM_OK;
        }
        if (rc)
            return rc;
        text = ig->text.data;
        text_len = ig->text.len;
    }
    if (text_len == 0) {
        note_skip(ig, "empty");
        return TM_OK;
    }
    /* --domain wins over a record's own domain, which wins over detection. Detection runs
     * only when the domain is still open, or for code whose language is not given. */
    if (ig->forced_domain >= 0)
        domain = ig->forced_domain;
    if (domain < 0 || (domain == TM_DOMAIN_CODE && !lang)) {
        const char *detected_lang = "und";
        int detected = ing_detect_domain(name ? name : "", name ? strlen(name) : 0, text, text_len,
                                         &detected_lang);
        if (domain < 0)
            domain = detected;
        if (!lang && domain == TM_DOMAIN_CODE && detected == TM_DOMAIN_CODE)
            lang = detected_lang;
    }
    if (!lang)
        lang = "und";

    struct tm_doc doc = {
        .id = tm_doc_make_id(ig->gen_no, ig->gen.next_seq),
        .generation = ig->gen_no,
        .domain = domain,
        .lang = lang,
        .lang_len = strlen(lang),
        .source = source,
        .source_len = strlen(source),
        .meta = meta ? meta : "{}",
        .meta_len = meta ? meta_len : 2,
        .text = text,
        .text_len = text_len,
    };
    size_t need = tm_doc_encoded_size(&doc);
    struct batch *b = &ig->batch;
    unsigned char key[8];
    void *dst;
    if ((rc = batch_open(ig)))
        return rc;
    tm_be64_put(key, doc.id);
    rc = tm_db_reserve(&ig->store.db, b->txn, TM_STORE_DOCS, key, sizeof(key), need, &dst);
    if (rc)
        return rc;
    tm_doc_encode(&doc, dst);
    b->ndocs++;
    b->doc_bytes += need;

    ig->gen.next_seq++;
    ig->gen_dirty = 1;
    ig->gen.docs[domain]++;
    ig->gen.bytes[domain] += doc.text_len;
    ig->docs[domain]++;
    ig->bytes[domain] += doc.text_len;
    ig->cur.rec.docs++;
    ig->cur.rec.bytes += doc.text_len;
    return TM_OK;
}

/* ---- Record-reader sink ------------------------------------------------------------------ */

struct member_ctx {
    struct ingest *ig;
    const char *source; /* path or archive!member */
    const char *pos_kind;
};

static int sink_record(void *vctx, const struct ing_record *rec)
{
    struct member_ctx *mc = vctx;
    struct ingest *ig = mc->ig;
    if (unit_begin(ig))
        return TM_OK;
    tm_buf_reset(&ig->source);
    tm_buf_printf(&ig->source, "%s#%s=%llu", mc->source, mc->pos_kind,
                  (unsigned long long)rec->position);
    int rc = TM_OK;
    if (rec->text_len > ig->cfg->max_doc_size)
        note_skip(ig, "too_large");
    else
        rc = emit_doc(ig, rec->text, rec->text_len, rec->meta, rec->meta_len, rec->domain,
                      rec->lang, rec->name, ig->source.data);
    if (rc)
        return rc;
    return maybe_commit(ig);
}

static void sink_problem(void *vctx, uint64_t position, const char *reason, const char *detail)
{
    struct member_ctx *mc = vctx;
    struct ingest *ig = mc->ig;
    if (unit_begin(ig))
        return;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", reason, detail ? detail : "");
    note_skip(ig, reason);
    ig->problems++;
    ig->cur.rec.errors++;
    note_error(ig, mc->source, position, mc->pos_kind, msg);
}

static void sink_count(void *vctx, const char *key)
{
    struct member_ctx *mc = vctx;
    if (mc->ig->cur.rec.units >= mc->ig->cur.skip_units)
        tm_stats_add(mc->ig->counts, key, 1);
}

/* ---- Reading members through libarchive ------------------------------------------------ */

struct archive_src {
    struct archive *a;
    const char *where;
    struct ingest *ig;
};

static long archive_read_cb(void *vctx, void *buf, size_t cap)
{
    struct archive_src *src = vctx;
    la_ssize_t n = archive_read_data(src->a, buf, cap);
    if (n < 0) {
        /* Reported by the caller with the position; keep the message for it. */
        const char *msg = archive_error_string(src->a);
        char *e = src->ig->arc_err;
        snprintf(e, sizeof(src->ig->arc_err), "%s", msg ? msg : "corrupt or truncated data");
        for (size_t len = strlen(e); len > 0 && (e[len - 1] == '\n' || e[len - 1] == ' ');)
            e[--len] = '\0';
        src->ig->arc_fatal = n == ARCHIVE_FATAL;
        return TM_ERR_FORMAT;
    }
    return (long)n;
}

static int read_archive(struct ingest *ig, struct archive *a, const char *container,
                        const char *display_name, int depth);

static const char *read_error_message(struct ingest *ig)
{
    return ig->arc_err[0] ? ig->arc_err : "read error (corrupt or truncated data)";
}

/* Bytes of the member delivered before a read error: where the damage starts. */
static uint64_t read_error_offset(const struct ing_reader *r)
{
    return r->offset + (r->len - r->pos);
}

/* A nested stream: libarchive pulls the compressed bytes of a member from the outer reader. */
struct nested_src {
    struct ing_reader *outer;
    int failed;
};

static la_ssize_t nested_read_cb(struct archive *a, void *vctx, const void **buf)
{
    struct nested_src *ns = vctx;
    const char *p;
    size_t n = ing_reader_peek(ns->outer, 1, &p);
    (void)a;
    if (n == 0) {
        if (ns->outer->err)
            ns->failed = 1;
        return ns->failed ? -1 : 0;
    }
    /* The peeked bytes stay valid until the next reader call: libarchive copies or consumes
     * them before asking again, and we skip them now so the next peek moves on. */
    *buf = p;
    ing_reader_skip(ns->outer, n);
    return (la_ssize_t)n;
}

static void archive_enable(struct archive *a, int nested)
{
    /* Only real compression filters: "all" would include uudecode (which rewrites text that
     * starts with "begin 644") and filters that run external programs. */
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_lzma(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_lz4(a);
    archive_read_support_filter_compress(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    if (!nested) {
        archive_read_support_format_7zip(a);
        archive_read_support_format_cpio(a);
    }
    archive_read_support_format_raw(a);
    /* A compressed file that holds nothing (man pages of 20 bytes exist) is no error. */
    archive_read_support_format_empty(a);
}

/* Non-zero when a member's first bytes start a compressed stream or a tar: it is opened as a
 * nested archive. */
static int is_compressed_magic(const unsigned char *p, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
    } magics[] = {
        {"\x1f\x8b", 2},         /* gzip */
        {"\x28\xb5\x2f\xfd", 4}, /* zstd */
        {"\xfd"
         "7zXZ\x00",
         6},                     /* xz */
        {"BZh", 3},              /* bzip2 */
        {"\x04\x22\x4d\x18", 4}, /* lz4 */
    };
    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        if (n >= magics[i].len && memcmp(p, magics[i].magic, magics[i].len) == 0)
            return 1;
    }
    /* A tar inside a tar (uncompressed) is also opened as a nested archive. */
    return n >= 262 && memcmp(p + 257, "ustar", 5) == 0;
}

/* Reads one member (or the single stream of a raw input) from `r`. `name` is the member's own
 * name (for kind and language), `source` its URI. */
static int read_member(struct ingest *ig, struct ing_reader *r, const char *name,
                       const char *source, int64_t known_size, int depth)
{
    size_t name_len = strlen(name);
    size_t base_len = ing_strip_compression(name, name_len);
    const char *head;
    size_t nhead = ing_reader_peek(r, ING_HEAD_BYTES, &head);
    if (r->err) {
        if (unit_begin(ig))
            return TM_OK;
        note_error(ig, source, read_error_offset(r), "offset", read_error_message(ig));
        ig->cur.rec.errors++;
        return TM_OK;
    }
    if (nhead && is_compressed_magic((const unsigned char *)head, nhead)) {
        if (depth >= ING_MAX_NESTING) {
            if (!unit_begin(ig))
                note_skip(ig, "nested_too_deep");
            return TM_OK;
        }
        struct archive *na = archive_read_new();
        struct nested_src ns = {r, 0};
        archive_enable(na, 1);
        int rc;
        if (archive_read_open(na, &ns, NULL, nested_read_cb, NULL) != ARCHIVE_OK) {
            if (!unit_begin(ig)) {
                const char *msg = archive_error_string(na);
                note_error(ig, source, 0, NULL, msg ? msg : "cannot open the compressed member");
                ig->cur.rec.errors++;
            }
            rc = TM_OK;
        } else {
            char *inner = tm_xstrndup(name, base_len);
            rc = read_archive(ig, na, source, inner, depth + 1);
            free(inner);
        }
        archive_read_free(na);
        return rc;
    }

    enum ing_kind kind = ing_kind_detect(name, base_len, head, nhead);
    struct member_ctx mc = {ig, source, "line"};
    struct ing_sink sink = {sink_record, sink_problem, sink_count, &mc};
    switch (kind) {
    case ING_KIND_JSONL: {
        struct ing_jsonl_opts o = {ig->cfg->text_field, ig->cfg->domain_field, ig->cfg->lang_field,
                                   ig->cfg->max_doc_size * 2 + 4096};
        int rc = ing_jsonl_read(r, &o, &sink);
        if (rc == TM_ERR_FORMAT || rc == TM_ERR_IO) {
            note_error(ig, source, r->line + 1, "line", read_error_message(ig));
            ig->cur.rec.errors++;
            return TM_OK;
        }
        return rc;
    }
    case ING_KIND_WARC: {
        struct ing_warc_opts o = {ig->cfg->max_doc_size};
        mc.pos_kind = "offset";
        int rc = ing_warc_read(r, &o, &sink);
        if (rc == TM_ERR_FORMAT || rc == TM_ERR_IO) {
            note_error(ig, source, r->offset, "offset", "unreadable WARC data");
            ig->cur.rec.errors++;
            return TM_OK;
        }
        return rc;
    }
    case ING_KIND_BINARY:
        if (!unit_begin(ig))
            note_skip(ig, "binary");
        return TM_OK;
    default:
        break;
    }

    /* One document per member. */
    if (unit_begin(ig))
        return TM_OK;
    if (known_size > 0 && (uint64_t)known_size > ig->cfg->max_doc_size) {
        note_skip(ig, "too_large");
        return TM_OK;
    }
    /* Most members fit in the read buffer: use them in place rather than copying them out. */
    const char *text;
    size_t text_len = ing_reader_peek(r, r->size, &text);
    if (r->err || !r->eof || text_len > ig->cfg->max_doc_size) {
        tm_buf_reset(&ig->member);
        for (;;) {
            const char *p;
            size_t n = ing_reader_peek(r, 1, &p);
            if (n == 0)
                break;
            if (ig->member.len + n > ig->cfg->max_doc_size) {
                note_skip(ig, "too_large");
                /* Drain without keeping: memory stays bounded by max_doc_size. */
                while ((n = ing_reader_peek(r, 1, &p)) > 0)
                    ing_reader_skip(r, n);
                if (r->err)
                    break;
                return TM_OK;
            }
            int rc = tm_buf_append(&ig->member, p, n);
            if (rc)
                return rc;
            ing_reader_skip(r, n);
        }
        text = ig->member.data;
        text_len = ig->member.len;
    }
    if (r->err) {
        note_error(ig, source, read_error_offset(r), "offset", read_error_message(ig));
        ig->cur.rec.errors++;
        return TM_OK;
    }
    if (text_len == 0) {
        note_skip(ig, "empty");
        return TM_OK;
    }
    if (ing_is_binary((const unsigned char *)text, text_len)) {
        note_skip(ig, "binary");
        return TM_OK;
    }
    if (kind == ING_KIND_HTML || kind == ING_KIND_ROFF) {
        tm_buf_reset(&ig->conv);
        int rc = kind == ING_KIND_HTML ? ing_html_to_text(text, text_len, &ig->conv)
                                       : ing_roff_to_text(text, text_len, &ig->conv);
        if (rc == TM_ERR_TOOBIG) {
            note_skip(ig, "too_large");
            return TM_OK;
        }
        if (rc)
            return rc;
        text = ig->conv.data ? ig->conv.data : "";
        text_len = ig->conv.len;
    }
    char *base = tm_xstrndup(name, base_len);
    int rc = emit_doc(ig, text, text_len, NULL, 0, -1, NULL, base, source);
    free(base);
    if (rc)
        return rc;
    return maybe_commit(ig);
}

/* Iterates the entries of an opened archive. `container` is the URI of the archive itself;
 * `display_name` the name of the stream when the format turns out to be raw. */
static int read_archive(struct ingest *ig, struct archive *a, const char *container,
                        const char *display_name, int depth)
{
    struct archive_entry *entry;
    int rc = TM_OK;
    uint64_t index = 0; /* regular members met, counted at depth 0 only */
    for (;;) {
        int ar = archive_read_next_header(a, &entry);
        if (ar == ARCHIVE_EOF) {
            if (archive_format(a) == ARCHIVE_FORMAT_EMPTY && !unit_begin(ig))
                note_skip(ig, "empty");
            break;
        }
        if (ar == ARCHIVE_RETRY)
            continue;
        if (ar == ARCHIVE_FATAL || ar < ARCHIVE_WARN) {
            /* On a reopened pass the damage was reported already (see ingest_file). */
            if (depth == 0 && ig->reopened) {
                const char *msg = archive_error_string(a);
                tm_log_debug("%s: no member after the damaged one: %s", container,
                             msg ? msg : "end of data");
            } else if (!unit_begin(ig)) {
                char msg[512];
                snprintf(msg, sizeof(msg), "cannot read archive entry: %s",
                         archive_error_string(a) ? archive_error_string(a) : "unknown error");
                note_error(ig, container, (uint64_t)archive_filter_bytes(a, -1), "offset", msg);
                ig->cur.rec.errors++;
            }
            break;
        }
        if (archive_entry_filetype(entry) != AE_IFREG)
            continue;
        if (depth == 0 && index++ < ig->skip_members)
            continue; /* read by an earlier pass over this archive */
        int raw = archive_format(a) == ARCHIVE_FORMAT_RAW;
        const char *mname = raw ? display_name : archive_entry_pathname(entry);
        if (!mname)
            mname = "";
        char *source;
        if (raw) {
            source = tm_xstrdup(container);
        } else {
            size_t sl = strlen(container) + strlen(mname) + 2;
            source = tm_xmalloc(sl);
            snprintf(source, sl, "%s!%s", container, mname);
        }
        const char *base = strrchr(mname, '/');
        base = base ? base + 1 : mname;
        struct archive_src src = {a, source, ig};
        ig->arc_err[0] = 0;
        ig->arc_fatal = 0;
        struct ing_reader r;
        /* One read buffer per nesting depth, reused by every member. */
        if (!ig->readbuf[depth])
            ig->readbuf[depth] = tm_xmalloc(ING_READ_BLOCK);
        ing_reader_init_buf(&r, archive_read_cb, &src, ig->readbuf[depth], ING_READ_BLOCK);
        int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : -1;
        rc = read_member(ig, &r, base, source, raw ? -1 : size, depth);
        int read_failed = r.err != 0;
        ing_reader_release(&r);
        free(source);
        if (rc)
            break;
        if (read_failed && (ig->arc_fatal || raw)) {
            /* libarchive can give nothing more after a fatal error. At the top level the
             * caller may reopen the archive and go on after this member (zip's central
             * directory makes that work; a truncated stream simply ends). */
            if (depth == 0 && !raw)
                ig->failed_member = index;
            break;
        }
    }
    return rc;
}

/* ---- Inputs ---------------------------------------------------------------------------- */

struct lookup_ctx {
    const char *key;
    struct tm_input rec;
    int found;
};

static int lookup_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct lookup_ctx *ctx = vctx;
    const void *val;
    size_t len;
    int rc = tm_db_get(db, txn, TM_STORE_INPUTS, ctx->key, strlen(ctx->key), &val, &len);
    if (rc == TM_ERR_NOTFOUND) {
        ctx->found = 0;
        return TM_OK;
    }
    if (rc)
        return rc;
    ctx->found = 1;
    return tm_input_decode(val, len, &ctx->rec, ctx->key);
}

static int lookup_input(struct ingest *ig, const char *key, struct tm_input *rec, int *found)
{
    /* The batch holds records not committed yet: an input named twice in one run must see
     * its own first reading. */
    for (size_t i = 0; i < ig->batch.ninputs; i++) {
        if (strcmp(ig->batch.inputs[i].key, key) == 0) {
            *rec = ig->batch.inputs[i].rec;
            *found = 1;
            return TM_OK;
        }
    }
    struct lookup_ctx ctx = {.key = key};
    /* Inside an open batch, read through its own transaction. */
    int rc = ig->batch.txn ? lookup_fn(ig->batch.txn, &ig->store.db, &ctx)
                           : tm_db_read(&ig->store.db, lookup_fn, &ctx);
    *found = ctx.found;
    if (ctx.found)
        *rec = ctx.rec;
    return rc;
}

static void hash_to_bytes(XXH128_hash_t h, unsigned char out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, 16);
}

/* Starts or resumes input `key`: sets ig->cur. Returns 1 when the input must be read, 0 when
 * it is unchanged. */
static int begin_input(struct ingest *ig, const char *key, const char *display, uint64_t size,
                       int64_t mtime_ns, const unsigned char hash[16], int *need)
{
    struct tm_input old;
    int found;
    int rc = lookup_input(ig, key, &old, &found);
    if (rc)
        return rc;
    *need = 1;
    memset(&ig->cur, 0, sizeof(ig->cur));
    ig->cur.key = key;
    ig->cur.display = display;
    if (found && old.state == TM_INPUT_DONE && memcmp(old.hash, hash, 16) == 0) {
        *need = 0;
        tm_stats_add(ig->inputs_stats, "unchanged", 1);
        if (old.size != size || old.mtime_ns != mtime_ns) {
            /* Touched but identical: remember the new mtime so the next run skips hashing. */
            old.size = size;
            old.mtime_ns = mtime_ns;
            batch_add_input(&ig->batch, key, &old);
        }
        return TM_OK;
    }
    ensure_generation(ig);
    ig->cur.active = 1;
    ig->cur.rec.size = size;
    ig->cur.rec.mtime_ns = mtime_ns;
    memcpy(ig->cur.rec.hash, hash, 16);
    ig->cur.rec.generation = ig->gen_no;
    if (found && old.state == TM_INPUT_PARTIAL && memcmp(old.hash, hash, 16) == 0) {
        /* An earlier run was killed while reading this input: skip what it committed. */
        ig->cur.skip_units = old.units;
        ig->cur.rec.docs = old.docs;
        ig->cur.rec.bytes = old.bytes;
        ig->cur.rec.errors = old.errors;
        tm_stats_add(ig->inputs_stats, "resumed", 1);
        tm_log_info("%s: resuming after %llu committed records", display,
                    (unsigned long long)old.units);
    } else {
        if (found && old.state == TM_INPUT_PARTIAL)
            tm_log_warn("%s: changed since an interrupted run; reading it again from the start",
                        display);
        else if (found)
            tm_log_info("%s: changed since generation %u; reading it into generation %u", display,
                        old.generation, ig->gen_no);
        ig->gen.inputs++;
        ig->gen_dirty = 1;
    }
    return TM_OK;
}

static int finish_input(struct ingest *ig)
{
    ig->cur.rec.state = TM_INPUT_DONE;
    if (ig->cur.rec.units < ig->cur.skip_units) {
        /* The input yields fewer units than an earlier run committed: it cannot be the same
         * content, which the hash check rules out; keep the larger count for safety. */
        ig->cur.rec.units = ig->cur.skip_units;
    }
    batch_add_input(&ig->batch, ig->cur.key, &ig->cur.rec);
    ig->cur.active = 0;
    tm_stats_add(ig->inputs_stats, "ingested", 1);
    return maybe_commit(ig);
}

/* The generated math set as one input. */
struct math_ctx {
    struct ingest *ig;
    XXH3_state_t *hash;
    uint64_t bytes;
    int hashing;
    uint64_t index;
};

static int math_emit(void *vctx, const char *text, size_t len)
{
    struct math_ctx *mc = vctx;
    if (mc->hashing) {
        XXH3_128bits_update(mc->hash, text, len);
        mc->bytes += len;
        return 0;
    }
    struct ingest *ig = mc->ig;
    uint64_t i = ++mc->index;
    if (unit_begin(ig))
        return 0;
    char source[64];
    snprintf(source, sizeof(source), "%s#problem=%llu", ING_MATH_INPUT, (unsigned long long)i);
    int rc = emit_doc(ig, text, len, NULL, 0, TM_DOMAIN_MATH, "und", NULL, source);
    if (rc)
        return rc;
    return maybe_commit(ig);
}

/* The generated set's fingerprint (it has no file): the xxh3-128 of its problems and their
 * bytes. */
static int math_fingerprint(struct ingest *ig, unsigned char hash[16], uint64_t *bytes)
{
    struct math_ctx mc = {.ig = ig, .hashing = 1};
    mc.hash = XXH3_createState();
    if (!mc.hash)
        return TM_ERR_NOMEM;
    XXH3_128bits_reset(mc.hash);
    ing_mathgen(ig->cfg->math_problems, math_emit, &mc);
    hash_to_bytes(XXH3_128bits_digest(mc.hash), hash);
    XXH3_freeState(mc.hash);
    *bytes = mc.bytes;
    return TM_OK;
}

static int ingest_math(struct ingest *ig)
{
    struct math_ctx mc = {.ig = ig};
    unsigned char hash[16];
    uint64_t bytes;
    int need, rc;
    if ((rc = math_fingerprint(ig, hash, &bytes)))
        return rc;
    tm_stats_add(ig->inputs_stats, "seen", 1);
    rc = begin_input(ig, ING_MATH_INPUT, ING_MATH_INPUT, bytes, 0, hash, &need);
    if (rc || !need)
        return rc;
    rc = ing_mathgen(ig->cfg->math_problems, math_emit, &mc);
    if (rc)
        return rc;
    return finish_input(ig);
}

/* Remembers the inputs (by a 64-bit hash of their absolute path) met in this run; returns 1
 * when `abs` was met before. Open addressing, grown at half load. */
static int seen_before(struct ingest *ig, const char *abs)
{
    uint64_t h = XXH3_64bits(abs, strlen(abs));
    h += h == 0; /* 0 marks an empty slot */
    if (2 * (ig->seen_count + 1) > ig->seen_cap) {
        size_t cap = ig->seen_cap ? 2 * ig->seen_cap : 1024;
        uint64_t *slots = tm_xcalloc(cap, sizeof(uint64_t));
        for (size_t i = 0; i < ig->seen_cap; i++) {
            uint64_t v = ig->seen[i];
            if (v) {
                size_t j = (size_t)(v & (cap - 1));
                while (slots[j])
                    j = (j + 1) & (cap - 1);
                slots[j] = v;
            }
        }
        free(ig->seen);
        ig->seen = slots;
        ig->seen_cap = cap;
    }
    size_t j = (size_t)(h & (ig->seen_cap - 1));
    while (ig->seen[j]) {
        if (ig->seen[j] == h)
            return 1;
        j = (j + 1) & (ig->seen_cap - 1);
    }
    ig->seen[j] = h;
    ig->seen_count++;
    return 0;
}

/* Reads one input file; *size gets its size (0 when it cannot be stat'ed), for progress. */
static int ingest_file(struct ingest *ig, const char *path, uint64_t *size_out)
{
    struct stat st;
    char *abs = NULL;
    int rc = TM_OK, need;
    tm_stats_add(ig->inputs_stats, "seen", 1);
    if (stat(path, &st) != 0) {
        note_error(ig, path, 0, NULL, strerror(errno));
        tm_stats_add(ig->inputs_stats, "failed", 1);
        return TM_OK;
    }
    *size_out = (uint64_t)st.st_size;
    abs = realpath(path, NULL);
    if (!abs) {
        note_error(ig, path, 0, NULL, strerror(errno));
        tm_stats_add(ig->inputs_stats, "failed", 1);
        return TM_OK;
    }
    if (seen_before(ig, abs)) {
        /* Named twice, or through a link to a file already read (package copyright files
         * often are): one file, read once. */
        tm_stats_add(ig->inputs_stats, "same_file", 1);
        tm_log_debug("%s: the same file as an earlier input (%s)", path, abs);
        goto out;
    }
    int64_t mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    uint64_t size = (uint64_t)st.st_size;

    /* Fast path: an input recorded as done with the same size and mtime is unchanged, as make
     * and rsync assume; --rehash checks the content anyway. */
    struct tm_input old;
    int found;
    rc = lookup_input(ig, abs, &old, &found);
    if (rc)
        goto out;
    if (found && old.state == TM_INPUT_DONE && old.size == size && old.mtime_ns == mtime_ns &&
        !ig->cfg->rehash) {
        tm_stats_add(ig->inputs_stats, "unchanged", 1);
        goto out;
    }
    unsigned char hash[16];
    if (tm_hash_file_digest(abs, hash) != TM_OK) {
        note_error(ig, path, 0, NULL, "cannot read the file to fingerprint it");
        tm_stats_add(ig->inputs_stats, "failed", 1);
        goto out;
    }
    rc = begin_input(ig, abs, path, size, mtime_ns, hash, &need);
    if (rc || !need)
        goto out;
    ig->input_bytes += size;
    if (size == 0) {
        if (!unit_begin(ig))
            note_skip(ig, "empty");
        rc = finish_input(ig);
        goto out;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    ig->skip_members = 0;
    ig->reopened = 0;
    for (int pass = 0; pass < ING_MAX_REOPEN && rc == TM_OK; pass++) {
        struct archive *a = archive_read_new();
        archive_enable(a, 0);
        ig->failed_member = 0;
        if (archive_read_open_filename(a, abs, ING_READ_BLOCK) != ARCHIVE_OK) {
            if (!ig->reopened && !unit_begin(ig)) {
                char msg[512];
                snprintf(msg, sizeof(msg), "cannot open: %s",
                         archive_error_string(a) ? archive_error_string(a) : "unknown error");
                note_error(ig, path, 0, NULL, msg);
                ig->cur.rec.errors++;
            }
        } else {
            rc = read_archive(ig, a, path, base, 0);
        }
        archive_read_free(a);
        if (ig->failed_member == 0)
            break;
        ig->skip_members = ig->failed_member;
        ig->reopened = 1;
    }
    if (rc == TM_OK)
        rc = finish_input(ig);
out:
    free(abs);
    return rc;
}

/* ---- Walking inputs -------------------------------------------------------------------- */

struct pathlist {
    char **items;
    size_t n, cap;
    uint64_t bytes;
};

static void pathlist_add(struct pathlist *l, char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->items = tm_xreallocarray(l->items, l->cap, sizeof(*l->items));
    }
    l->items[l->n++] = path;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Recursive walk in sorted order so document ids do not depend on readdir order. Symbolic
 * links inside directories are skipped: they would add the same file twice, or loop. */
static void walk(struct ingest *ig, const char *dir, struct pathlist *out)
{
    DIR *d = opendir(dir);
    if (!d) {
        note_error(ig, dir, 0, NULL, strerror(errno));
        return;
    }
    struct pathlist names = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        pathlist_add(&names, tm_path_join(dir, e->d_name));
    }
    closedir(d);
    if (names.n > 1)
        qsort(names.items, names.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < names.n; i++) {
        struct stat st;
        if (lstat(names.items[i], &st) != 0) {
            note_error(ig, names.items[i], 0, NULL, strerror(errno));
            free(names.items[i]);
            continue;
        }
        if (S_ISLNK(st.st_mode)) {
            note_skip(ig, "symlink");
            free(names.items[i]);
        } else if (S_ISDIR(st.st_mode)) {
            walk(ig, names.items[i], out);
            free(names.items[i]);
        } else if (S_ISREG(st.st_mode)) {
            out->bytes += (uint64_t)st.st_size;
            pathlist_add(out, names.items[i]);
        } else {
            note_skip(ig, "not_regular");
            free(names.items[i]);
        }
    }
    free(names.items);
}

static void expand_inputs(struct ingest *ig, char **inputs, int ninputs, struct pathlist *out)
{
    for (int i = 0; i < ninputs; i++) {
        struct stat st;
        if (strcmp(inputs[i], ING_MATH_INPUT) == 0) {
            pathlist_add(out, tm_xstrdup(inputs[i]));
            continue;
        }
        if (stat(inputs[i], &st) != 0) {
            note_error(ig, inputs[i], 0, NULL, strerror(errno));
            tm_stats_add(ig->inputs_stats, "failed", 1);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            walk(ig, inputs[i], out);
        } else {
            out->bytes += (uint64_t)st.st_size;
            pathlist_add(out, tm_xstrdup(inputs[i]));
        }
    }
}

/* ---- The run --------------------------------------------------------------------------- */

/* Reads the last generation; an open one (left by a killed run) is continued. */
static int find_gen_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct ingest *ig = vctx;
    (void)db;
    int rc = tm_store_last_gen(&ig->store, txn, &ig->last_gen);
    if (rc || ig->last_gen == 0)
        return rc;
    struct tm_gen g;
    rc = tm_store_get_gen(&ig->store, txn, ig->last_gen, &g);
    if (rc)
        return rc;
    if (g.state == TM_GEN_OPEN) {
        ig->gen_no = ig->last_gen;
        ig->gen = g;
    }
    return TM_OK;
}

static void fill_stats(struct ingest *ig)
{
    cJSON *s = ig->stats;
    tm_stats_set_str(s, "workdir", ig->cfg->workdir);
    tm_stats_set_num(s, "generation", ig->gen_no);
    cJSON *docs = tm_stats_obj(s, "documents");
    cJSON *bytes = tm_stats_obj(s, "text_bytes");
    uint64_t total_docs = 0, total_bytes = 0;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        tm_stats_set_num(docs, tm_domain_name(d), (double)ig->docs[d]);
        tm_stats_set_num(bytes, tm_domain_name(d), (double)ig->bytes[d]);
        total_docs += ig->docs[d];
        total_bytes += ig->bytes[d];
    }
    tm_stats_set_num(docs, "total", (double)total_docs);
    tm_stats_set_num(bytes, "total", (double)total_bytes);
    tm_stats_set_num(s, "input_bytes", (double)ig->input_bytes);
    cJSON *norm = tm_stats_obj(s, "normalization");
    tm_stats_set_num(norm, "utf8_repairs", (double)ig->norm.utf8_repairs);
    tm_stats_set_num(norm, "nul_removed", (double)ig->norm.nul_removed);
    tm_stats_set_num(norm, "crlf", (double)ig->norm.crlf);
    cJSON *errors = tm_stats_obj(s, "errors");
    tm_stats_set_num(errors, "count", (double)ig->errors);
}

int ing_run(const struct ing_config *cfg, char **inputs, int ninputs, int progress, cJSON *stats)
{
    struct ingest ig;
    struct pathlist paths = {0};
    int lock = -1, rc;
    memset(&ig, 0, sizeof(ig));
    ig.cfg = cfg;
    ig.stats = stats;
    ig.inputs_stats = tm_stats_obj(stats, "inputs");
    tm_stats_add(ig.inputs_stats, "seen", 0);
    tm_stats_add(ig.inputs_stats, "ingested", 0);
    tm_stats_add(ig.inputs_stats, "unchanged", 0);
    tm_stats_add(ig.inputs_stats, "failed", 0);
    tm_stats_add(ig.inputs_stats, "same_file", 0);
    ig.skipped = tm_stats_obj(stats, "skipped");
    ig.counts = tm_stats_obj(stats, "records");
    cJSON *errors = tm_stats_obj(stats, "errors");
    ig.error_list = cJSON_AddArrayToObject(errors, "list");
    ig.forced_domain = -1;
    if (cfg->domain) {
        ig.forced_domain = tm_domain_parse(cfg->domain);
        if (ig.forced_domain < 0) {
            tm_log_error("--domain: unknown domain '%s' (text, math or code)", cfg->domain);
            return TM_ERR_USAGE;
        }
    }
    batch_init(&ig.batch);
    tm_buf_init(&ig.member, cfg->max_doc_size + 1);
    /* Normalization can grow text (one invalid byte becomes 3); the cap is the document
     * limit plus that worst case, and an over-cap result is skipped as too large. */
    tm_buf_init(&ig.text, cfg->max_doc_size);
    tm_buf_init(&ig.conv, cfg->max_doc_size);
    tm_buf_init(&ig.source, 1 << 16);

    if (tm_mkdirs(cfg->workdir) != TM_OK) {
        rc = TM_ERR_IO;
        goto out;
    }
    lock = tm_lock_workdir(cfg->workdir);
    if (lock < 0) {
        rc = lock;
        goto out;
    }
    rc = tm_store_open(&ig.store, cfg->workdir, 0);
    if (rc)
        goto out;
    rc = tm_db_read(&ig.store.db, find_gen_fn, &ig);
    if (rc)
        goto out;
    if (ig.gen_no)
        tm_log_info("generation %u was left open by an interrupted run; continuing it", ig.gen_no);

    expand_inputs(&ig, inputs, ninputs, &paths);
    tm_progress_init(&ig.progress, "ingest", paths.n, paths.bytes, progress, 0);
    for (size_t i = 0; i < paths.n && rc == TM_OK; i++) {
        uint64_t size = 0; /* as the walk counted it: the generated set is not in the total */
        if (strcmp(paths.items[i], ING_MATH_INPUT) == 0)
            rc = ingest_math(&ig);
        else
            rc = ingest_file(&ig, paths.items[i], &size);
        tm_progress_add(&ig.progress, 1, size);
    }
    if (rc == TM_OK)
        rc = commit(&ig);
    if (rc == TM_OK && ig.gen_no) {
        ig.gen.state = TM_GEN_CLOSED;
        ig.gen.finished = (int64_t)time(NULL);
        ig.gen_dirty = 1;
        rc = commit(&ig);
    }
    tm_progress_finish(&ig.progress);
    fill_stats(&ig);
    if (rc == TM_OK && ig.errors)
        rc = TM_ERR_PARTIAL;
out:
    for (size_t i = 0; i < paths.n; i++)
        free(paths.items[i]);
    free(paths.items);
    batch_release(&ig.batch); /* aborts a batch left open by an error, before the store closes */
    tm_store_close(&ig.store);
    if (lock >= 0)
        tm_unlock(lock);
    tm_buf_release(&ig.member);
    tm_buf_release(&ig.text);
    tm_buf_release(&ig.conv);
    tm_buf_release(&ig.source);
    for (int d = 0; d <= ING_MAX_NESTING; d++)
        free(ig.readbuf[d]);
    free(ig.seen);
    return rc;
}

/* ---- The plan -------------------------------------------------------------------------- */

int ing_plan(const struct ing_config *cfg, char **inputs, int ninputs, struct tm_plan *out)
{
    struct ingest ig;
    struct pathlist paths = {0};
    memset(&ig, 0, sizeof(ig));
    ig.cfg = cfg;
    cJSON *scratch = cJSON_CreateObject(); /* the walk's counters, not reported */
    ig.inputs_stats = tm_stats_obj(scratch, "inputs");
    ig.skipped = tm_stats_obj(scratch, "skipped");
    ig.error_list = cJSON_AddArrayToObject(scratch, "list");
    int have_store = tm_store_exists(cfg->workdir), rc = TM_OK;
    if (have_store && (rc = tm_store_open(&ig.store, cfg->workdir, TM_DB_RDONLY)) == TM_OK)
        rc = tm_db_read(&ig.store.db, find_gen_fn, &ig);
    uint64_t n_new = 0, n_changed = 0, n_unfinished = 0, n_same = 0, n_twice = 0;
    if (rc == TM_OK)
        expand_inputs(&ig, inputs, ninputs, &paths);
    uint64_t n_missing = ig.errors; /* inputs the walk could not stat or open */
    for (size_t i = 0; i < paths.n && rc == TM_OK; i++) {
        struct tm_input old;
        int found = 0;
        int64_t mtime_ns = 0;
        uint64_t size = 0;
        char *abs = NULL;
        const char *key = paths.items[i];
        unsigned char math_hash[16];
        int is_math = strcmp(key, ING_MATH_INPUT) == 0;
        if (is_math) {
            if ((rc = math_fingerprint(&ig, math_hash, &size)))
                break;
        } else {
            struct stat st;
            if (stat(key, &st) != 0 || !(abs = realpath(key, NULL))) {
                n_missing++; /* the run reports it */
                continue;
            }
            if (seen_before(&ig, abs)) {
                n_twice++;
                free(abs);
                continue;
            }
            key = abs;
            size = (uint64_t)st.st_size;
            mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        }
        if (have_store)
            rc = lookup_input(&ig, key, &old, &found);
        if (rc == TM_OK) {
            if (!found)
                n_new++;
            else if (old.state != TM_INPUT_DONE)
                n_unfinished++;
            else if (is_math ? memcmp(old.hash, math_hash, 16) == 0
                             : old.size == size && old.mtime_ns == mtime_ns && !cfg->rehash)
                n_same++;
            else
                n_changed++;
        }
        free(abs);
    }
    if (rc == TM_OK) {
        uint64_t todo = n_new + n_changed + n_unfinished;
        tm_plan_add(out,
                    "%zu input%s: %" PRIu64 " new, %" PRIu64 " changed%s, %" PRIu64
                    " unfinished, %" PRIu64 " unchanged",
                    paths.n, paths.n == 1 ? "" : "s", n_new, n_changed,
                    cfg->rehash ? " or to rehash" : " (size or mtime; the content decides)",
                    n_unfinished, n_same);
        if (n_twice)
            tm_plan_add(out, ", %" PRIu64 " the same file as another", n_twice);
        if (n_missing)
            tm_plan_add(out, "; %" PRIu64 " cannot be read (the run reports them)", n_missing);
        if (ig.gen_no)
            tm_plan_add(out, "; generation %u, left open by an interrupted run, is finished",
                        ig.gen_no);
        else if (todo)
            tm_plan_add(out, "; into generation %u", ig.last_gen + 1);
        out->work = todo > 0 || ig.gen_no || n_missing;
        out->new_gen = ig.gen_no ? ig.gen_no : todo ? ig.last_gen + 1 : 0;
    }
    for (size_t i = 0; i < paths.n; i++)
        free(paths.items[i]);
    free(paths.items);
    free(ig.seen);
    if (ig.store.db.env)
        tm_store_close(&ig.store);
    cJSON_Delete(scratch);
    return rc;
}
