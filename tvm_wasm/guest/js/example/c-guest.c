// A C guest for the page: bytes 1..n into a new block through the default memory, summed by typed loads.
#define TVM(name) __attribute__((import_module("tvm"), import_name(name)))
TVM("alloc") long long tvm_alloc(int region, int size);
TVM("write") int tvm_write(long long handle, const void *from, int length);
TVM("load_u8") int tvm_load_u8(long long handle, int offset);

static unsigned char buffer[4096];

int fill_and_sum(int region, int n) {
    long long h = tvm_alloc(region, n);
    for (int i = 0; i < n; i++) buffer[i] = (unsigned char)(i + 1);
    if (tvm_write(h, buffer, n) != 0) return -1;
    int sum = 0;
    for (int i = 0; i < n; i++) sum += tvm_load_u8(h, i);
    return sum;
}
