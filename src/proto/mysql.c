/* Command names for logs and metric labels; binary-protocol integer widths. */
#include "proto/mysql.h"

#include <stddef.h>

static const char *const names[] = {
        [PROTO_COM_SLEEP] = "sleep",
        [PROTO_COM_QUIT] = "quit",
        [PROTO_COM_INIT_DB] = "init_db",
        [PROTO_COM_QUERY] = "query",
        [PROTO_COM_FIELD_LIST] = "field_list",
        [PROTO_COM_CREATE_DB] = "create_db",
        [PROTO_COM_DROP_DB] = "drop_db",
        [PROTO_COM_REFRESH] = "refresh",
        [PROTO_COM_SHUTDOWN] = "shutdown",
        [PROTO_COM_STATISTICS] = "statistics",
        [PROTO_COM_PROCESS_INFO] = "process_info",
        [PROTO_COM_CONNECT] = "connect",
        [PROTO_COM_PROCESS_KILL] = "process_kill",
        [PROTO_COM_DEBUG] = "debug",
        [PROTO_COM_PING] = "ping",
        [PROTO_COM_TIME] = "time",
        [PROTO_COM_DELAYED_INSERT] = "delayed_insert",
        [PROTO_COM_CHANGE_USER] = "change_user",
        [PROTO_COM_BINLOG_DUMP] = "binlog_dump",
        [PROTO_COM_TABLE_DUMP] = "table_dump",
        [PROTO_COM_CONNECT_OUT] = "connect_out",
        [PROTO_COM_REGISTER_SLAVE] = "register_slave",
        [PROTO_COM_STMT_PREPARE] = "stmt_prepare",
        [PROTO_COM_STMT_EXECUTE] = "stmt_execute",
        [PROTO_COM_STMT_SEND_LONG_DATA] = "stmt_send_long_data",
        [PROTO_COM_STMT_CLOSE] = "stmt_close",
        [PROTO_COM_STMT_RESET] = "stmt_reset",
        [PROTO_COM_SET_OPTION] = "set_option",
        [PROTO_COM_STMT_FETCH] = "stmt_fetch",
        [PROTO_COM_DAEMON] = "daemon",
        [PROTO_COM_BINLOG_DUMP_GTID] = "binlog_dump_gtid",
        [PROTO_COM_RESET_CONNECTION] = "reset_connection",
};

const char *proto_command_name(uint8_t cmd)
{
	if (cmd < sizeof(names) / sizeof(names[0]) && names[cmd])
		return names[cmd];
	return "unknown";
}

int proto_binary_int_width(uint8_t type)
{
	switch (type) {
	case PROTO_TYPE_TINY:
		return 1;
	case PROTO_TYPE_SHORT:
	case PROTO_TYPE_YEAR:
		return 2;
	case PROTO_TYPE_INT24:
	case PROTO_TYPE_LONG:
		return 4;
	case PROTO_TYPE_LONGLONG:
		return 8;
	default:
		return 0;
	}
}
