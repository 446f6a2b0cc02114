
struct __align__(SALIGN) SVec { SRC v[VEC]; };
struct __align__(DALIGN) DVec { DST v[VEC]; };

extern "C" __global__ void vz_zwalk(
    const SRC* __restrict__ src,
    const int* __restrict__ iz, const WT* __restrict__ wz,
    const int* __restrict__ iy, const WT* __restrict__ wy,
    const int* __restrict__ ix, const WT* __restrict__ wx,
    const long long zi, const long long yi, const long long xi,
    const int zo, const int yo, const int xo, const int nzr, const int nbzr, const WT cval,
    DST* __restrict__ out)
{
    // xo, xi count VEC-element units where x passes through (KX == 1 and VEC > 1)
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= xo) return;
    int xs[KX];
    WT ws[KX];
#pragma unroll
    for (int e = 0; e < KX; ++e) {
        xs[e] = XPASS ? x : ix[x * KX + e];
        ws[e] = XPASS ? (WT)1 : wx[x * KX + e];
    }
    for (int y = blockIdx.y; y < yo; y += gridDim.y) {
        int yy[KY];
        WT wyy[KY];
#pragma unroll
        for (int c = 0; c < KY; ++c) {
            yy[c] = iy[y * KY + c];
            wyy[c] = wy[y * KY + c];
        }
        for (int q = blockIdx.z; q < nbzr; q += gridDim.z) {
            const int b = q / nzr;
            const int z0 = (q - b * nzr) * ZR;
            const SRC* base = src + (long long)b * zi * yi * xi * VEC;
            DST* obase = out + (((long long)b * zo) * yo + y) * (long long)xo * VEC;
            int prev[KZ];
#pragma unroll
            for (int a = 0; a < KZ; ++a) prev[a] = -2;
            SVec v[KZ * KY][KX];
            const int z1 = min(z0 + ZR, zo);
            for (int z = z0; z < z1; ++z) {
                int zz[KZ];
                bool same = true;
#pragma unroll
                for (int a = 0; a < KZ; ++a) {
                    zz[a] = iz[z * KZ + a];
                    same = same && zz[a] == prev[a];
                }
                if (!same) {
#pragma unroll
                    for (int a = 0; a < KZ; ++a) {
                        prev[a] = zz[a];
#pragma unroll
                        for (int c = 0; c < KY; ++c) {
                            const bool rc = HAS_CVAL && (zz[a] < 0 || yy[c] < 0);
                            const SVec* row = reinterpret_cast<const SVec*>(
                                base + ((long long)(rc ? 0 : zz[a]) * yi + (rc ? 0 : yy[c]))
                                * xi * VEC);
#pragma unroll
                            for (int e = 0; e < KX; ++e) {
                                if (HAS_CVAL && (rc || xs[e] < 0)) {
#pragma unroll
                                    for (int k = 0; k < VEC; ++k) v[a * KY + c][e].v[k] = 0;
                                } else {
                                    v[a * KY + c][e] = row[xs[e]];
                                }
                            }
                        }
                    }
                }
                WT rw[KZ * KY];
#pragma unroll
                for (int a = 0; a < KZ; ++a) {
#pragma unroll
                    for (int c = 0; c < KY; ++c) rw[a * KY + c] = wz[z * KZ + a] * wyy[c];
                }
                DVec d;
#pragma unroll
                for (int k = 0; k < VEC; ++k) {
                    WT acc = 0;
#pragma unroll
                    for (int e = 0; e < KX; ++e) {
#pragma unroll
                        for (int r = 0; r < KZ * KY; ++r) {
                            const bool cv = HAS_CVAL && (zz[r / KY] < 0 || yy[r % KY] < 0
                                                         || xs[e] < 0);
                            const WT val = cv ? cval : TOWT(v[r][e].v[k]);
                            acc = XPASS ? fma(rw[r], val, acc) : fma(rw[r] * ws[e], val, acc);
                        }
                    }
                    d.v[k] = STORE(acc);
                }
                __stcs(reinterpret_cast<VSTORE*>(obase + ((long long)z * yo * xo + x) * VEC),
                       *reinterpret_cast<VSTORE*>(&d));
            }
        }
    }
}
