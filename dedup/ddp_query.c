/* ddp_query.c: dedup's decisions as later stages read them (dedup.h). */
#include <inttypes.h>
#include <stdio.h>

#include "dedup.h"
#include "ddp_internal.h"
#include "../core/tm_db.h"
#include "../core/tm_err.h"
#include "../core/tm_store.h"

int ddp_generation_done(struct tm_store *st, MDB_txn *txn, uint32_t gen, int *done)
{
    struct tm_stage r;
    int rc = tm_stage_get(st, txn, "dedup", gen, &r);
    *done = rc == TM_OK && r.state == TM_STAGE_DONE;
    return rc == TM_ERR_NOTFOUND ? TM_OK : rc;
}

int ddp_document_kept(struct tm_store *st, MDB_txn *txn, uint64_t id, int *kept)
{
    unsigned char key[8];
    tm_be64_put(key, id);
    const void *val;
    size_t len;
    *kept = 0;
    int rc = tm_db_get(&st->db, txn, TM_STORE_DEDUP, key, 8, &val, &len);
    if (rc)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "dedup decision %" PRIu64, id);
    struct ddp_decision d;
    if ((rc = ddp_decision_decode(val, len, &d, NULL, what)))
        return rc;
    *kept = d.status == DDP_KEPT;
    return TM_OK;
}
