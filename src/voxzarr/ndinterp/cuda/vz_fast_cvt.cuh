
#define F2P23 8388608.0f
__device__ __forceinline__ float vz_u2f(unsigned n) {
    return __uint_as_float(0x4B000000u | n) - F2P23;
}
__device__ __forceinline__ unsigned vz_floor_u(float y) {
    return __float_as_uint(__fadd_rd(y, F2P23)) - 0x4B000000u;
}
