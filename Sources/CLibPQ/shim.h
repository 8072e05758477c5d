#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
#include <libpq-fe.h>
// Swift does not import these macros from postgres_ext.h.
static inline int CLibPQ_DIAG_SQLSTATE(void) { return 'C'; }
static inline int CLibPQ_DIAG_MESSAGE_PRIMARY(void) { return 'M'; }
static inline int CLibPQ_DIAG_MESSAGE_DETAIL(void) { return 'D'; }
#endif
