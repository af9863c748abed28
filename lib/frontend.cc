/* SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Native kernel of the spectrogram front end (gr_specdiff.spectrogram): the per-row mean and
 * peak power of 256-point Hann FFTs over a circularly wrapped frame, in one cache-friendly
 * pass with gr-fft (FFTW) and VOLK. It computes exactly what the numpy path computes before
 * the dB normalisation; tests/test_spectrogram.py holds the two to float32 rounding.
 */
#include <gnuradio/fft/fft.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <volk/volk.h>

#include <cmath>
#include <complex>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace py = pybind11;

namespace {

constexpr int kNfft = 256;
constexpr int kRows = 256;

class RowPowerEngine
{
public:
    explicit RowPowerEngine(int nthreads) : d_window(kNfft)
    {
        if (nthreads < 1)
            throw std::invalid_argument("nthreads must be >= 1");
        for (int k = 0; k < kNfft; k++) // periodic Hann, as spectrogram.hann_window()
            d_window[k] = float(0.5 - 0.5 * std::cos(2.0 * M_PI * k / kNfft));
        for (int t = 0; t < nthreads; t++)
            d_ffts.emplace_back(std::make_unique<gr::fft::fft_complex_fwd>(kNfft, 1));
    }

    int nthreads() const { return int(d_ffts.size()); }

    py::tuple operator()(py::array_t<std::complex<float>, py::array::c_style> x,
                         int hop,
                         py::array_t<int64_t, py::array::c_style | py::array::forcecast> edges)
    {
        if (x.ndim() != 1)
            throw std::invalid_argument("x must be a 1-D complex64 array");
        if (edges.ndim() != 1 || edges.shape(0) != kRows + 1)
            throw std::invalid_argument("edges must hold 257 segment indices");
        if (hop < 1 || hop > kNfft / 2)
            throw std::invalid_argument("hop must be in 1..128");
        const int64_t n = x.shape(0);
        const int64_t* e = edges.data();
        const int64_t padded = e[kRows] * hop;
        if (padded < n || n < kNfft)
            throw std::invalid_argument("segments do not cover the frame");

        py::array_t<float> mean({ kRows, kNfft }), peak({ kRows, kNfft });
        const gr_complex* xp = reinterpret_cast<const gr_complex*>(x.data());
        float* mp = mean.mutable_data();
        float* pp = peak.mutable_data();
        {
            py::gil_scoped_release release;
            const int nt = nthreads();
            std::vector<std::thread> workers;
            for (int t = 0; t < nt; t++) {
                const int r0 = t * kRows / nt, r1 = (t + 1) * kRows / nt;
                workers.emplace_back([=] {
                    rows(*d_ffts[t], xp, n, padded, hop, e, r0, r1, mp, pp);
                });
            }
            for (auto& w : workers)
                w.join();
        }
        return py::make_tuple(mean, peak);
    }

private:
    std::vector<float> d_window;
    std::vector<std::unique_ptr<gr::fft::fft_complex_fwd>> d_ffts;

    void rows(gr::fft::fft_complex_fwd& fft,
              const gr_complex* x,
              int64_t n,
              int64_t padded,
              int hop,
              const int64_t* edges,
              int r0,
              int r1,
              float* mean,
              float* peak) const
    {
        volk::vector<float> mag(kNfft), acc(kNfft), mx(kNfft);
        gr_complex* in = fft.get_inbuf();
        const gr_complex* out = fft.get_outbuf();
        for (int r = r0; r < r1; r++) {
            std::fill(acc.begin(), acc.end(), 0.0f);
            std::fill(mx.begin(), mx.end(), 0.0f);
            for (int64_t s = edges[r]; s < edges[r + 1]; s++) {
                const int64_t start = s * hop;
                if (start + kNfft <= n) {
                    volk_32fc_32f_multiply_32fc(in, x + start, d_window.data(), kNfft);
                } else { // zero padding to a whole hop, then wrap to the frame start
                    for (int k = 0; k < kNfft; k++) {
                        const int64_t i = start + k;
                        const gr_complex v = i < n ? x[i] : (i < padded ? 0.0f : x[i - padded]);
                        in[k] = v * d_window[k];
                    }
                }
                fft.execute();
                volk_32fc_magnitude_squared_32f(mag.data(), out, kNfft);
                volk_32f_x2_add_32f(acc.data(), acc.data(), mag.data(), kNfft);
                volk_32f_x2_max_32f(mx.data(), mx.data(), mag.data(), kNfft);
            }
            const float inv = 1.0f / float(edges[r + 1] - edges[r]);
            for (int k = 0; k < kNfft; k++) { // fftshift: DC to column 128
                const int c = (k + kNfft / 2) % kNfft;
                mean[r * kNfft + c] = acc[k] * inv;
                peak[r * kNfft + c] = mx[k];
            }
        }
    }
};

} // namespace

PYBIND11_MODULE(_frontend, m)
{
    m.doc() = "Native (gr-fft + VOLK) row-power kernel of the gr_specdiff spectrogram";
    py::class_<RowPowerEngine>(m, "RowPowerEngine")
        .def(py::init<int>(), py::arg("nthreads") = 2)
        .def_property_readonly("nthreads", &RowPowerEngine::nthreads)
        .def("__call__",
             &RowPowerEngine::operator(),
             py::arg("x"),
             py::arg("hop"),
             py::arg("edges"),
             "Per-row (mean, peak) power, fftshifted, each float32 (256, 256).");
}
