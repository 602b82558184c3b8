//! shapes: the tensor shapes of every op, shared by the GPU kernels (`nn::ops`) and the CPU `reference`.
//! All tensors are row-major NCHW f32 (f64 in the reference).

/// One image: channels × height × width (what a dataset holds and a network takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl ImageShape {
    pub fn new(c: usize, h: usize, w: usize) -> Self {
        ImageShape { c, h, w }
    }
    /// Values in one image.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Pixels in one plane.
    pub fn plane(&self) -> usize {
        self.h * self.w
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.c, self.h, self.w)
    }
}

/// A matching term's features, class-major: real [classes·per_real, dim] and synthetic [classes·per_syn, dim].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchShape {
    pub classes: usize,
    pub per_real: usize,
    pub per_syn: usize,
    pub dim: usize,
}

/// 3×3 convolution, stride 1, zero padding `pad`: x [n,cin,h,w] → y [n,cout,ho,wo].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub pad: usize,
}

impl ConvShape {
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad - 2
    }
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad - 2
    }
    pub fn x_len(&self) -> usize {
        self.n * self.cin * self.h * self.w
    }
    pub fn w_len(&self) -> usize {
        self.cout * self.cin * 9
    }
    pub fn y_len(&self) -> usize {
        self.n * self.cout * self.ho() * self.wo()
    }
    /// Multiply-accumulates of the forward pass (the input-gradient pass has the same count).
    pub fn macs(&self) -> u64 {
        (self.y_len() * self.cin * 9) as u64
    }

    /// The same convolution as a `KConvShape` (K = 3, stride 1).
    pub fn k3(&self) -> KConvShape {
        KConvShape { n: self.n, cin: self.cin, cout: self.cout, h: self.h, w: self.w, k: 3, stride: 1, pad: self.pad }
    }
}

/// Instance norm over planes: x [n,c,hw].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
}

impl NormShape {
    pub fn len(&self) -> usize {
        self.n * self.c * self.hw
    }
    pub fn planes(&self) -> usize {
        self.n * self.c
    }
}

/// 2×2 average pooling over `planes` planes of h×w (h, w even).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
}

impl PoolShape {
    pub fn x_len(&self) -> usize {
        self.planes * self.h * self.w
    }
    pub fn y_len(&self) -> usize {
        self.planes * (self.h / 2) * (self.w / 2)
    }
}

/// Fully connected layer: x [n,inp] · w[out,inp]ᵀ + b → y [n,out].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub n: usize,
    pub inp: usize,
    pub out: usize,
}

/// Convolution with a square K×K kernel, any stride and zero padding (the evaluation pool's networks):
/// x [n,cin,h,w], w [cout,cin,k,k], y [n,cout,ho,wo] with ho = (h + 2·pad − k)/stride + 1 (floor, as PyTorch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KConvShape {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl KConvShape {
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn x_len(&self) -> usize {
        self.n * self.cin * self.h * self.w
    }
    pub fn w_len(&self) -> usize {
        self.cout * self.cin * self.k * self.k
    }
    pub fn y_len(&self) -> usize {
        self.n * self.cout * self.ho() * self.wo()
    }
    pub fn macs(&self) -> u64 {
        (self.y_len() * self.cin * self.k * self.k) as u64
    }
}

/// K×K pooling windows with stride K (max or average) over `planes` planes of h×w; floor mode: rows and columns
/// past the last whole window are dropped, as PyTorch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
}

impl WindowShape {
    pub fn ho(&self) -> usize {
        self.h / self.k
    }
    pub fn wo(&self) -> usize {
        self.w / self.k
    }
    pub fn x_len(&self) -> usize {
        self.planes * self.h * self.w
    }
    pub fn y_len(&self) -> usize {
        self.planes * self.ho() * self.wo()
    }
}
