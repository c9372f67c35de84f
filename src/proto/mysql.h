/* MySQL protocol constants: capability and status flags, command bytes, column
 * types and flags, packet header bytes. Values from MySQL's mysql_com.h and
 * field_types.h (and MariaDB's mariadb_com.h where MariaDB extends them). */
#ifndef VECGATE_PROTO_MYSQL_H
#define VECGATE_PROTO_MYSQL_H

#include <stdint.h>

/* Capability flags (32 bits exchanged in the handshake). */
#define PROTO_CLIENT_LONG_PASSWORD (1u << 0)
/* MariaDB calls bit 0 CLIENT_MYSQL: a MariaDB server clears it to say that
 * its extended capabilities travel in the greeting's reserved bytes. */
#define PROTO_CLIENT_MYSQL                          PROTO_CLIENT_LONG_PASSWORD
#define PROTO_CLIENT_FOUND_ROWS                     (1u << 1)
#define PROTO_CLIENT_LONG_FLAG                      (1u << 2)
#define PROTO_CLIENT_CONNECT_WITH_DB                (1u << 3)
#define PROTO_CLIENT_NO_SCHEMA                      (1u << 4)
#define PROTO_CLIENT_COMPRESS                       (1u << 5)
#define PROTO_CLIENT_ODBC                           (1u << 6)
#define PROTO_CLIENT_LOCAL_FILES                    (1u << 7)
#define PROTO_CLIENT_IGNORE_SPACE                   (1u << 8)
#define PROTO_CLIENT_PROTOCOL_41                    (1u << 9)
#define PROTO_CLIENT_INTERACTIVE                    (1u << 10)
#define PROTO_CLIENT_SSL                            (1u << 11)
#define PROTO_CLIENT_IGNORE_SIGPIPE                 (1u << 12)
#define PROTO_CLIENT_TRANSACTIONS                   (1u << 13)
#define PROTO_CLIENT_RESERVED                       (1u << 14)
#define PROTO_CLIENT_SECURE_CONNECTION              (1u << 15)
#define PROTO_CLIENT_MULTI_STATEMENTS               (1u << 16)
#define PROTO_CLIENT_MULTI_RESULTS                  (1u << 17)
#define PROTO_CLIENT_PS_MULTI_RESULTS               (1u << 18)
#define PROTO_CLIENT_PLUGIN_AUTH                    (1u << 19)
#define PROTO_CLIENT_CONNECT_ATTRS                  (1u << 20)
#define PROTO_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA (1u << 21)
#define PROTO_CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS   (1u << 22)
#define PROTO_CLIENT_SESSION_TRACK                  (1u << 23)
#define PROTO_CLIENT_DEPRECATE_EOF                  (1u << 24)
#define PROTO_CLIENT_OPTIONAL_RESULTSET_METADATA    (1u << 25)
#define PROTO_CLIENT_ZSTD_COMPRESSION_ALGORITHM     (1u << 26)
#define PROTO_CLIENT_QUERY_ATTRIBUTES               (1u << 27)
#define PROTO_CLIENT_MULTI_FACTOR_AUTHENTICATION    (1u << 28)
#define PROTO_CLIENT_CAPABILITY_EXTENSION           (1u << 29)
#define PROTO_CLIENT_SSL_VERIFY_SERVER_CERT         (1u << 30)
#define PROTO_CLIENT_REMEMBER_OPTIONS               (1u << 31)

/* MariaDB extended capabilities: the upper 32 bits of MariaDB's 64-bit flags,
 * given here as their 32-bit value in the extra 4 bytes. */
#define PROTO_MARIADB_CLIENT_PROGRESS             (1u << 0)
#define PROTO_MARIADB_CLIENT_COM_MULTI            (1u << 1)
#define PROTO_MARIADB_CLIENT_STMT_BULK_OPERATIONS (1u << 2)
#define PROTO_MARIADB_CLIENT_EXTENDED_METADATA    (1u << 3)
#define PROTO_MARIADB_CLIENT_CACHE_METADATA       (1u << 4)
#define PROTO_MARIADB_CLIENT_BULK_UNIT_RESULTS    (1u << 5)

/* Server status flags (OK and EOF packets, greeting). */
#define PROTO_STATUS_IN_TRANS              0x0001
#define PROTO_STATUS_AUTOCOMMIT            0x0002
#define PROTO_STATUS_MORE_RESULTS_EXISTS   0x0008
#define PROTO_STATUS_NO_GOOD_INDEX_USED    0x0010
#define PROTO_STATUS_NO_INDEX_USED         0x0020
#define PROTO_STATUS_CURSOR_EXISTS         0x0040
#define PROTO_STATUS_LAST_ROW_SENT         0x0080
#define PROTO_STATUS_DB_DROPPED            0x0100
#define PROTO_STATUS_NO_BACKSLASH_ESCAPES  0x0200
#define PROTO_STATUS_METADATA_CHANGED      0x0400
#define PROTO_STATUS_QUERY_WAS_SLOW        0x0800
#define PROTO_STATUS_PS_OUT_PARAMS         0x1000
#define PROTO_STATUS_IN_TRANS_READONLY     0x2000
#define PROTO_STATUS_SESSION_STATE_CHANGED 0x4000

/* Command bytes: the first byte of every command-phase client packet. */
#define PROTO_COM_SLEEP               0x00
#define PROTO_COM_QUIT                0x01
#define PROTO_COM_INIT_DB             0x02
#define PROTO_COM_QUERY               0x03
#define PROTO_COM_FIELD_LIST          0x04
#define PROTO_COM_CREATE_DB           0x05
#define PROTO_COM_DROP_DB             0x06
#define PROTO_COM_REFRESH             0x07
#define PROTO_COM_SHUTDOWN            0x08
#define PROTO_COM_STATISTICS          0x09
#define PROTO_COM_PROCESS_INFO        0x0a
#define PROTO_COM_CONNECT             0x0b
#define PROTO_COM_PROCESS_KILL        0x0c
#define PROTO_COM_DEBUG               0x0d
#define PROTO_COM_PING                0x0e
#define PROTO_COM_TIME                0x0f
#define PROTO_COM_DELAYED_INSERT      0x10
#define PROTO_COM_CHANGE_USER         0x11
#define PROTO_COM_BINLOG_DUMP         0x12
#define PROTO_COM_TABLE_DUMP          0x13
#define PROTO_COM_CONNECT_OUT         0x14
#define PROTO_COM_REGISTER_SLAVE      0x15
#define PROTO_COM_STMT_PREPARE        0x16
#define PROTO_COM_STMT_EXECUTE        0x17
#define PROTO_COM_STMT_SEND_LONG_DATA 0x18
#define PROTO_COM_STMT_CLOSE          0x19
#define PROTO_COM_STMT_RESET          0x1a
#define PROTO_COM_SET_OPTION          0x1b
#define PROTO_COM_STMT_FETCH          0x1c
#define PROTO_COM_DAEMON              0x1d
#define PROTO_COM_BINLOG_DUMP_GTID    0x1e
#define PROTO_COM_RESET_CONNECTION    0x1f

/* COM_STMT_EXECUTE flags byte (payload offset 5, command byte included). */
#define PROTO_CURSOR_TYPE_NO_CURSOR     0x00
#define PROTO_CURSOR_TYPE_READ_ONLY     0x01
#define PROTO_CURSOR_TYPE_FOR_UPDATE    0x02
#define PROTO_CURSOR_TYPE_SCROLLABLE    0x04
#define PROTO_PARAMETER_COUNT_AVAILABLE 0x08

/* COM_SET_OPTION argument. */
#define PROTO_OPTION_MULTI_STATEMENTS_ON  0
#define PROTO_OPTION_MULTI_STATEMENTS_OFF 1

/* Column types (column definition and binary protocol). */
#define PROTO_TYPE_DECIMAL     0x00
#define PROTO_TYPE_TINY        0x01
#define PROTO_TYPE_SHORT       0x02
#define PROTO_TYPE_LONG        0x03
#define PROTO_TYPE_FLOAT       0x04
#define PROTO_TYPE_DOUBLE      0x05
#define PROTO_TYPE_NULL        0x06
#define PROTO_TYPE_TIMESTAMP   0x07
#define PROTO_TYPE_LONGLONG    0x08
#define PROTO_TYPE_INT24       0x09
#define PROTO_TYPE_DATE        0x0a
#define PROTO_TYPE_TIME        0x0b
#define PROTO_TYPE_DATETIME    0x0c
#define PROTO_TYPE_YEAR        0x0d
#define PROTO_TYPE_NEWDATE     0x0e
#define PROTO_TYPE_VARCHAR     0x0f
#define PROTO_TYPE_BIT         0x10
#define PROTO_TYPE_TIMESTAMP2  0x11
#define PROTO_TYPE_DATETIME2   0x12
#define PROTO_TYPE_TIME2       0x13
#define PROTO_TYPE_TYPED_ARRAY 0x14
/* TiDB's internal VECTOR(FLOAT32) type. Never on the wire: TiDB sends vector
 * columns as PROTO_TYPE_LONG_BLOB (docs/tidb.md §1). */
#define PROTO_TYPE_TIDB_VECTOR 0xe1
#define PROTO_TYPE_VECTOR      0xf2 /* MySQL 9 VECTOR */
#define PROTO_TYPE_JSON        0xf5
#define PROTO_TYPE_NEWDECIMAL  0xf6
#define PROTO_TYPE_ENUM        0xf7
#define PROTO_TYPE_SET         0xf8
#define PROTO_TYPE_TINY_BLOB   0xf9
#define PROTO_TYPE_MEDIUM_BLOB 0xfa
#define PROTO_TYPE_LONG_BLOB   0xfb
#define PROTO_TYPE_BLOB        0xfc
#define PROTO_TYPE_VAR_STRING  0xfd
#define PROTO_TYPE_STRING      0xfe
#define PROTO_TYPE_GEOMETRY    0xff

/* Column definition flags (16 bits on the wire). */
#define PROTO_FLAG_NOT_NULL         0x0001
#define PROTO_FLAG_PRI_KEY          0x0002
#define PROTO_FLAG_UNIQUE_KEY       0x0004
#define PROTO_FLAG_MULTIPLE_KEY     0x0008
#define PROTO_FLAG_BLOB             0x0010
#define PROTO_FLAG_UNSIGNED         0x0020
#define PROTO_FLAG_ZEROFILL         0x0040
#define PROTO_FLAG_BINARY           0x0080
#define PROTO_FLAG_ENUM             0x0100
#define PROTO_FLAG_AUTO_INCREMENT   0x0200
#define PROTO_FLAG_TIMESTAMP        0x0400
#define PROTO_FLAG_SET              0x0800
#define PROTO_FLAG_NO_DEFAULT_VALUE 0x1000
#define PROTO_FLAG_ON_UPDATE_NOW    0x2000
#define PROTO_FLAG_PART_KEY         0x4000
#define PROTO_FLAG_NUM              0x8000

/* Collation ids used by TiDB and common clients. */
#define PROTO_CHARSET_UTF8MB4_GENERAL_CI 45
#define PROTO_CHARSET_UTF8MB4_BIN        46 /* TiDB's default */
#define PROTO_CHARSET_BINARY             63
#define PROTO_CHARSET_UTF8MB4_0900_AI_CI 255

/* First payload byte of server packets. 0xFE is an EOF packet only when the
 * payload is shorter than 9 bytes (or an OK under DEPRECATE_EOF); in the
 * connection phase it is an AuthSwitchRequest. */
#define PROTO_OK             0x00
#define PROTO_AUTH_MORE_DATA 0x01
#define PROTO_LOCAL_INFILE   0xfb
#define PROTO_EOF            0xfe
#define PROTO_AUTH_SWITCH    0xfe
#define PROTO_ERR            0xff

#define PROTO_HANDSHAKE_V10 10
#define PROTO_SCRAMBLE_LEN  20 /* salt of mysql_native / caching_sha2 */
#define PROTO_SQLSTATE_LEN  5

/* A short name for a command byte, for logs and metric labels:
 * "query", "stmt_prepare", ...; "unknown" for bytes MySQL does not define. */
const char *proto_command_name(uint8_t cmd);

/* Bytes an integer of this column type takes in the binary protocol (both
 * COM_STMT_EXECUTE parameters and binary result rows): 1 for TINY, 2 for
 * SHORT and YEAR, 4 for INT24 and LONG, 8 for LONGLONG; 0 for every type
 * that is not a fixed-width integer. */
int proto_binary_int_width(uint8_t type);

#endif
