/* mg_version — the version the binary reports (-V, the status page). */
#ifndef MG_VERSION_H
#define MG_VERSION_H

#define MG_VERSION "0.1.0"

#endif
