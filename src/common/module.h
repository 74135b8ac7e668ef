/*
 * module.h - code loaded only by the processes that use it.
 *
 * The http child's server (libmicrohttpd) and the report, document and
 * notification tasks (libhpdf, libxlsxwriter, libcurl, libcrypto) are
 * built as shared objects and opened after fork(), in the process that
 * needs them, so the master and the workers of other queues never map
 * those libraries: every library a process maps costs it relocated pages
 * and constructors, which is most of an idle worker's memory.
 *
 * A module is looked for next to the running executable first (the build
 * tree), then in CELERIAC_MODULEDIR (the installed package).
 */
#ifndef CELERIAC_MODULE_H
#define CELERIAC_MODULE_H

#include <stddef.h>

#define MODULE_HTTP	"mod_http.so"
#define MODULE_TASKS	"mod_tasks.so"

/*
 * The address of sym in module, opening the module on first use.
 * Returns NULL with a message in err (which file, what dlopen said).
 */
void	*module_sym(const char *module, const char *sym, char *err,
	    size_t errlen);

#endif
