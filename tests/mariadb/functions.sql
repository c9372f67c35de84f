-- TiDB's vector functions as MariaDB UDFs (tests/mariadb/vecgate_udf.c), for a
-- MariaDB 10.11 test database standing in for TiDB. The server's plugin_dir
-- must hold vecgate_udf.so (build target vecgate_udf).
CREATE FUNCTION IF NOT EXISTS vec_cosine_distance RETURNS REAL SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vec_l2_distance RETURNS REAL SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vec_l1_distance RETURNS REAL SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vec_negative_inner_product RETURNS REAL SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vec_l2_norm RETURNS REAL SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vec_dims RETURNS INTEGER SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vec_from_text RETURNS STRING SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vec_as_text RETURNS STRING SONAME 'vecgate_udf.so';
CREATE FUNCTION IF NOT EXISTS vecgate_udf_set_arith RETURNS STRING SONAME 'vecgate_udf.so';
