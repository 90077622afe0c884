/* dups: the duplicate index of prepare — per key (the match key, and the
 * barcode when matching on District ID) an open-addressing table of key
 * hashes, at most half full, each slot naming the latest record that holds
 * the key. A hash match is confirmed by the caller's key_of callback (the
 * earlier record is re-read from the work file), so a 32-bit hash is
 * enough. A slot is 16 bytes and a table of n keys has the power of two
 * >= 2n slots (65,536 at least): a million keys cost 2,097,152 slots x 16 B
 * = 32 MiB per table (while a table grows, its old slots are held too). */
#ifndef BROKER_DUPS_H
#define BROKER_DUPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h;    /* the key's hash (a hash of 0 is kept as 1); 0: empty slot */
    uint32_t line; /* line of the latest occurrence (a file of more lines is refused) */
    uint64_t pos;  /* that record: offset << DUP_LEN_BITS | length (DUP_LEN_FAR: longer, scanned for) */
} dup_slot;

/* A record's length in a slot: records of DUP_LEN_FAR bytes or more (only
 * when max_record_bytes allows them: 256 MiB) keep DUP_LEN_FAR, and their
 * end is found again by scanning from their offset. Offsets take the other
 * 36 bits: a work file of more than 64 GiB is refused. */
#define DUP_LEN_BITS 28
#define DUP_LEN_FAR (((uint64_t)1 << DUP_LEN_BITS) - 1)
#define DUP_MAX_FILE ((uint64_t)1 << (64 - DUP_LEN_BITS))
/* Keys of this many bytes or more (far beyond the 40 characters of a
 * District ID and the 14 of a barcode) are never taken for duplicates, as
 * they never were (the key used to be compared through a 512-byte copy). */
#define DUP_KEY_CMP 512

/* One table (zeroed: empty). Its slots are mapped for it alone (zero pages
 * from the kernel) and unmapped when it grows or is freed. */
typedef struct {
    dup_slot *v;
    size_t cap, n;
} dup_table;

/* The key held by a slot's record, "" when it has none (cannot be read,
 * or the workers would skip it). Valid until the next call. */
typedef const char *(*dup_key_fn)(void *ctx, const dup_slot *s);

/* The 32-bit hash of a key, never 0. */
uint32_t dup_hash(const char *key, size_t len);
/* Size a table at once for about `keys` keys. 0 / -1 (no memory). */
int dup_reserve(dup_table *t, uint64_t keys);
/* Unmap the slots (the table left empty). */
void dup_free(dup_table *t);
/* A slot's record: its offset, and its length (DUP_LEN_FAR: longer). */
uint64_t dup_slot_off(const dup_slot *s);
uint64_t dup_slot_len(const dup_slot *s);

/* Look key (hashed h) up, the table grown first when it would be more than
 * half full. 1: the key is there, *slot its slot (a key of DUP_KEY_CMP
 * bytes or more is never found); 0: it is not, *slot the empty slot it
 * goes to (fill it with dup_put); -1: no memory. */
int dup_lookup(dup_table *t, const char *key, uint32_t h, dup_key_fn key_of, void *ctx, dup_slot **slot);
/* Make *slot name the record at off/len starting on line; new: the slot
 * was empty (dup_lookup said 0), so the table holds one key more. */
void dup_put(dup_table *t, dup_slot *slot, int new, uint32_t h, uint64_t off, size_t len, uint64_t line);
/* The line where a key occurs last (the one that wins), 0 if unknown. */
uint64_t dup_final_line(const dup_table *t, const char *key, dup_key_fn key_of, void *ctx);

#endif
