/* tm_fixture: writes archive fixtures for the CLI tests with libarchive's writer, so tests need
 * no archive tools beyond the library tokenmill itself uses.
 *
 *   tm_fixture OUT MEMBER=FILE...
 *
 * The format follows OUT's suffix: .tar .tar.gz .tgz .tar.zst .tar.xz .tar.bz2 .zip .7z, or a
 * single compressed file .gz .zst .xz .bz2 (exactly one member, whose name is ignored). */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_fs.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

struct format {
    const char *suffix;
    int (*set_format)(struct archive *);
    int (*add_filter)(struct archive *);
};

static const struct format formats[] = {
    {".tar.gz", archive_write_set_format_pax_restricted, archive_write_add_filter_gzip},
    {".tgz", archive_write_set_format_pax_restricted, archive_write_add_filter_gzip},
    {".tar.zst", archive_write_set_format_pax_restricted, archive_write_add_filter_zstd},
    {".tar.xz", archive_write_set_format_pax_restricted, archive_write_add_filter_xz},
    {".tar.bz2", archive_write_set_format_pax_restricted, archive_write_add_filter_bzip2},
    {".tar", archive_write_set_format_pax_restricted, archive_write_add_filter_none},
    {".zip", archive_write_set_format_zip, archive_write_add_filter_none},
    {".7z", archive_write_set_format_7zip, archive_write_add_filter_none},
    {".gz", archive_write_set_format_raw, archive_write_add_filter_gzip},
    {".zst", archive_write_set_format_raw, archive_write_add_filter_zstd},
    {".xz", archive_write_set_format_raw, archive_write_add_filter_xz},
    {".bz2", archive_write_set_format_raw, archive_write_add_filter_bzip2},
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tm_fixture OUT MEMBER=FILE...\n");
        return 2;
    }
    const struct format *fmt = NULL;
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (ends_with(argv[1], formats[i].suffix)) {
            fmt = &formats[i];
            break;
        }
    if (!fmt) {
        fprintf(stderr, "tm_fixture: unknown archive suffix in %s\n", argv[1]);
        return 2;
    }
    struct archive *a = archive_write_new();
    if (fmt->set_format(a) != ARCHIVE_OK || fmt->add_filter(a) != ARCHIVE_OK ||
        archive_write_open_filename(a, argv[1]) != ARCHIVE_OK) {
        fprintf(stderr, "tm_fixture: %s: %s\n", argv[1], archive_error_string(a));
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "tm_fixture: expected MEMBER=FILE, got %s\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        size_t len;
        char *data;
        /* Fixtures are small; the 1 GiB cap only guards against a wrong argument. */
        if (tm_read_file(eq + 1, (size_t)1 << 30, &data, &len) != TM_OK) {
            fprintf(stderr, "tm_fixture: cannot read %s\n", eq + 1);
            return 1;
        }
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, argv[i]);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, 1700000000, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            archive_write_data(a, data, len) != (la_ssize_t)len) {
            fprintf(stderr, "tm_fixture: %s: %s\n", argv[i], archive_error_string(a));
            return 1;
        }
        archive_entry_free(e);
        free(data);
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        fprintf(stderr, "tm_fixture: %s: %s\n", argv[1], archive_error_string(a));
        return 1;
    }
    archive_write_free(a);
    return 0;
}
