-- One <principal ID, IP address> tuple per CloudTrail API call: the rules of the CloudTrail
-- ingest Lambda (lambda_src/cloudtrail_ingest: get_tuple, principal_of, classify_address) in
-- SQL. This file is the only definition: it is written in Athena's dialect (Trino) and
-- secml/sql/query.py translates it to DuckDB's with sqlglot.
--
-- Table `cloudtrail`: Athena's CloudTrail table (stacks/athena.py), or the same columns built
-- over local files by DuckDB (secml/sql/duckdb_engine.py). Partition columns: account, region,
-- day ('yyyy/MM/dd', the delivery folder).
--
-- Parameters (?, in this order; '' leaves a filter off): first day, first day, last day, last
-- day, accounts (comma-separated), accounts, regions (comma-separated), regions, ipv4_only
-- ('true' or 'false'). lambda_src/athena_tuples/params.py builds the list for both engines.
--
-- Regular expressions use only what RE2 (DuckDB) and Java's syntax (Athena) read alike;
-- \A and \z anchor at the whole text (never at a line inside it).
WITH calls AS (
    -- Not an Insight event, and a userIdentity with a principalId (AWS services acting on
    -- their own have none).
    SELECT
        useridentity.principalid AS principal_id,
        sourceipaddress AS source_ip
    FROM cloudtrail
    WHERE coalesce(eventtype, '') <> 'AwsCloudTrailInsight'
        AND useridentity.principalid IS NOT NULL
        AND (? = '' OR day >= ?)
        AND (? = '' OR day <= ?)
        AND (? = '' OR strpos(',' || ? || ',', ',' || account || ',') > 0)
        AND (? = '' OR strpos(',' || ? || ',', ',' || region || ',') > 0)
),

trimmed AS (
    -- principalId before its first ':' (the role, not its session); both fields without the
    -- whitespace Python's str.strip() removes.
    SELECT
        regexp_replace(
            regexp_replace(
                split_part(principal_id, ':', 1),
                '\A[\t\n\x0B\f\r\x1C-\x1F\x85\p{Z}]+', ''
            ),
            '[\t\n\x0B\f\r\x1C-\x1F\x85\p{Z}]+\z', ''
        ) AS principal,
        regexp_replace(
            regexp_replace(source_ip, '\A[\t\n\x0B\f\r\x1C-\x1F\x85\p{Z}]+', ''),
            '[\t\n\x0B\f\r\x1C-\x1F\x85\p{Z}]+\z', ''
        ) AS address
    FROM calls
),

ipv4 AS (
    -- Dotted IPv4 as Python's ipaddress reads it (no leading zeros), alone or as the last 32
    -- bits of an IPv6 address (::ffff:192.0.2.1, 64:ff9b::192.0.2.1).
    SELECT
        principal,
        address,
        regexp_like(
            address,
            '\A(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
            || '(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}\z'
        ) AS is_ipv4,
        regexp_like(
            address,
            '\A[0-9A-Fa-f:]*:(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
            || '(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}\z'
        ) AS has_ipv4_tail
    FROM trimmed
),

tail AS (
    -- (CASE, not a bare CAST: DuckDB's regexp_extract gives '' where Trino's gives NULL.)
    SELECT
        principal,
        address,
        is_ipv4,
        has_ipv4_tail,
        CASE WHEN has_ipv4_tail
            THEN CAST(regexp_extract(address, '([0-9]+)\.[0-9]+\.[0-9]+\.[0-9]+\z', 1) AS INTEGER) END AS o1,
        CASE WHEN has_ipv4_tail
            THEN CAST(regexp_extract(address, '([0-9]+)\.[0-9]+\.[0-9]+\z', 1) AS INTEGER) END AS o2,
        CASE WHEN has_ipv4_tail
            THEN CAST(regexp_extract(address, '([0-9]+)\.[0-9]+\z', 1) AS INTEGER) END AS o3,
        CASE WHEN has_ipv4_tail
            THEN CAST(regexp_extract(address, '([0-9]+)\z', 1) AS INTEGER) END AS o4
    FROM ipv4
),

ipv6 AS (
    -- IPv6 in lower case, an IPv4 tail rewritten as its two hextets, kept only if it is a
    -- valid address: 1 to 4 hex digits a group, 8 groups, or fewer around one '::' that
    -- stands for at least one.
    SELECT
        principal,
        address,
        is_ipv4,
        v6
    FROM (
        SELECT
            principal,
            address,
            is_ipv4,
            CASE
                WHEN is_ipv4 OR strpos(address, ':') = 0 THEN NULL
                WHEN has_ipv4_tail THEN lower(regexp_extract(address, '\A(.*:)', 1))
                    || substr('0123456789abcdef', CAST((o1 - o1 % 16) / 16 AS INTEGER) + 1, 1)
                    || substr('0123456789abcdef', o1 % 16 + 1, 1)
                    || substr('0123456789abcdef', CAST((o2 - o2 % 16) / 16 AS INTEGER) + 1, 1)
                    || substr('0123456789abcdef', o2 % 16 + 1, 1)
                    || ':'
                    || substr('0123456789abcdef', CAST((o3 - o3 % 16) / 16 AS INTEGER) + 1, 1)
                    || substr('0123456789abcdef', o3 % 16 + 1, 1)
                    || substr('0123456789abcdef', CAST((o4 - o4 % 16) / 16 AS INTEGER) + 1, 1)
                    || substr('0123456789abcdef', o4 % 16 + 1, 1)
                ELSE lower(address)
            END AS v6
        FROM tail
    ) AS rewritten
    WHERE v6 IS NULL OR regexp_like(
        v6,
        '\A(([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}'
        || '|([0-9a-f]{1,4}:){1,7}:'
        || '|([0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}'
        || '|([0-9a-f]{1,4}:){1,5}(:[0-9a-f]{1,4}){1,2}'
        || '|([0-9a-f]{1,4}:){1,4}(:[0-9a-f]{1,4}){1,3}'
        || '|([0-9a-f]{1,4}:){1,3}(:[0-9a-f]{1,4}){1,4}'
        || '|([0-9a-f]{1,4}:){1,2}(:[0-9a-f]{1,4}){1,5}'
        || '|[0-9a-f]{1,4}:(:[0-9a-f]{1,4}){1,6}'
        || '|:((:[0-9a-f]{1,4}){1,7}|:))\z'
    )
),

expanded AS (
    -- '::' written out as the zero groups it stands for: eight groups.
    SELECT
        principal,
        address,
        is_ipv4,
        v6,
        CASE
            WHEN strpos(v6, '::') = 0 THEN v6
            ELSE CASE WHEN head = '' THEN '' ELSE head || ':' END
                || substr(
                    '0:0:0:0:0:0:0:0', 1,
                    2 * (8 - head_groups - tail_groups) - 1
                )
                || CASE WHEN tail = '' THEN '' ELSE ':' || tail END
        END AS full_v6
    FROM (
        SELECT
            principal,
            address,
            is_ipv4,
            v6,
            head,
            tail,
            CASE WHEN head = '' THEN 0 ELSE length(head) - length(replace(head, ':', '')) + 1 END
                AS head_groups,
            CASE WHEN tail = '' THEN 0 ELSE length(tail) - length(replace(tail, ':', '')) + 1 END
                AS tail_groups
        FROM (
            SELECT
                principal,
                address,
                is_ipv4,
                v6,
                split_part(v6, '::', 1) AS head,
                split_part(v6, '::', 2) AS tail
            FROM ipv6
        ) AS split
    ) AS halves
),

hextets AS (
    -- Each group without its leading zeros.
    SELECT
        principal,
        address,
        is_ipv4,
        v6,
        regexp_extract(split_part(full_v6, ':', 1), '\A0*(.+)\z', 1) AS g1,
        regexp_extract(split_part(full_v6, ':', 2), '\A0*(.+)\z', 1) AS g2,
        regexp_extract(split_part(full_v6, ':', 3), '\A0*(.+)\z', 1) AS g3,
        regexp_extract(split_part(full_v6, ':', 4), '\A0*(.+)\z', 1) AS g4,
        regexp_extract(split_part(full_v6, ':', 5), '\A0*(.+)\z', 1) AS g5,
        regexp_extract(split_part(full_v6, ':', 6), '\A0*(.+)\z', 1) AS g6,
        lpad(split_part(full_v6, ':', 7), 4, '0') AS p7,
        lpad(split_part(full_v6, ':', 8), 4, '0') AS p8,
        regexp_extract(split_part(full_v6, ':', 7), '\A0*(.+)\z', 1) AS g7,
        regexp_extract(split_part(full_v6, ':', 8), '\A0*(.+)\z', 1) AS g8
    FROM expanded
),

compressed AS (
    -- Python's compressed form: the longest run of two or more zero groups (the first, on a
    -- tie) becomes '::'. Found in ':g1:...:g8:' longest pattern first.
    SELECT
        principal,
        address,
        is_ipv4,
        v6,
        g1, g2, g3, g4, g5, g6, p7, p8,
        framed,
        CASE
            WHEN strpos(framed, ':0:0:0:0:0:0:0:0:') > 0 THEN ':0:0:0:0:0:0:0:0:'
            WHEN strpos(framed, ':0:0:0:0:0:0:0:') > 0 THEN ':0:0:0:0:0:0:0:'
            WHEN strpos(framed, ':0:0:0:0:0:0:') > 0 THEN ':0:0:0:0:0:0:'
            WHEN strpos(framed, ':0:0:0:0:0:') > 0 THEN ':0:0:0:0:0:'
            WHEN strpos(framed, ':0:0:0:0:') > 0 THEN ':0:0:0:0:'
            WHEN strpos(framed, ':0:0:0:') > 0 THEN ':0:0:0:'
            WHEN strpos(framed, ':0:0:') > 0 THEN ':0:0:'
        END AS zeros
    FROM (
        SELECT
            *,
            ':' || g1 || ':' || g2 || ':' || g3 || ':' || g4 || ':' || g5 || ':' || g6
            || ':' || g7 || ':' || g8 || ':' AS framed
        FROM hextets
    ) AS framed_hextets
),

addresses AS (
    SELECT
        principal,
        CASE
            WHEN is_ipv4 THEN address
            WHEN v6 IS NULL THEN NULL
            -- IPv4-mapped (::ffff:a.b.c.d): the IPv4 address, each byte from two hex digits
            WHEN g1 = '0' AND g2 = '0' AND g3 = '0' AND g4 = '0' AND g5 = '0' AND g6 = 'ffff'
                THEN CAST(16 * (strpos('0123456789abcdef', substr(p7, 1, 1)) - 1)
                    + strpos('0123456789abcdef', substr(p7, 2, 1)) - 1 AS VARCHAR)
                || '.' || CAST(16 * (strpos('0123456789abcdef', substr(p7, 3, 1)) - 1)
                    + strpos('0123456789abcdef', substr(p7, 4, 1)) - 1 AS VARCHAR)
                || '.' || CAST(16 * (strpos('0123456789abcdef', substr(p8, 1, 1)) - 1)
                    + strpos('0123456789abcdef', substr(p8, 2, 1)) - 1 AS VARCHAR)
                || '.' || CAST(16 * (strpos('0123456789abcdef', substr(p8, 3, 1)) - 1)
                    + strpos('0123456789abcdef', substr(p8, 4, 1)) - 1 AS VARCHAR)
            -- ':' framing off, except where it is half of '::'
            ELSE substr(
                compacted,
                CASE WHEN substr(compacted, 1, 2) = '::' THEN 1 ELSE 2 END,
                length(compacted)
                - CASE WHEN substr(compacted, 1, 2) = '::' THEN 0 ELSE 1 END
                - CASE WHEN substr(compacted, length(compacted) - 1, 2) = '::' THEN 0 ELSE 1 END
            )
        END AS ip
    FROM (
        SELECT
            *,
            CASE
                WHEN zeros IS NULL THEN framed
                ELSE substr(framed, 1, strpos(framed, zeros) - 1) || '::'
                    || substr(framed, strpos(framed, zeros) + length(zeros))
            END AS compacted
        FROM compressed
    ) AS compacted_groups
)

SELECT
    principal,
    ip
FROM addresses
WHERE ip IS NOT NULL
    AND principal <> ''
    AND NOT regexp_like(principal, '[,"\n]')
    AND (? = 'false' OR strpos(ip, ':') = 0)
