
extern "C" __global__ void vz_separable(
    const SRC* __restrict__ src,
    const int* __restrict__ iz, const WT* __restrict__ wz,
    const int* __restrict__ iy, const WT* __restrict__ wy,
    const int* __restrict__ ix, const WT* __restrict__ wx,
    const long long zi, const long long yi, const long long xi,
    const int zo, const int yo, const int xo, const long long nbz, const WT cval,
    DST* __restrict__ out)
{
    for (long long bz = blockIdx.z; bz < nbz; bz += gridDim.z) {
        const long long b = bz / zo;
        const int z = (int)(bz - b * zo);
        const SRC* base = src + b * zi * yi * xi;
        for (int y = blockIdx.y; y < yo; y += gridDim.y) {
            const SRC* rows[KZ * KY];
            WT rw[KZ * KY];
            bool rc[KZ * KY];
#pragma unroll
            for (int a = 0; a < KZ; ++a) {
#pragma unroll
                for (int c = 0; c < KY; ++c) {
                    const int zz = iz[z * KZ + a];
                    const int yy = iy[y * KY + c];
                    const int r = a * KY + c;
                    rc[r] = zz < 0 || yy < 0;
                    rows[r] = rc[r] ? base : base + ((long long)zz * yi + yy) * xi;
                    rw[r] = wz[z * KZ + a] * wy[y * KY + c];
                }
            }
            DST* orow = out + (bz * yo + y) * (long long)xo;
            for (int x = threadIdx.x; x < xo; x += blockDim.x) {
                WT acc = 0;
#pragma unroll
                for (int e = 0; e < KX; ++e) {
                    const int xx = ix[x * KX + e];
                    const WT we = wx[x * KX + e];
#pragma unroll
                    for (int r = 0; r < KZ * KY; ++r) {
                        const WT v = (rc[r] || xx < 0) ? cval : (WT)rows[r][xx];
                        acc += rw[r] * we * v;
                    }
                }
                orow[x] = STORE(acc);
            }
        }
    }
}
