//! trace: one traced step as named tensors and metadata, written as a safetensors file that an outside tool
//! (benches/trace_check.py, in PyTorch) reads to recompute the step from its inputs. What a distillation iteration
//! traces is `distill::trace`'s; an evaluation training step, `eval::trace_step`'s.

use std::collections::BTreeMap;

use safetensors::tensor::Dtype;

use crate::nn::convnet::{ConvNetConfig, ConvNetParams, DEPTH};

/// One tensor of a trace.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

/// A trace: named tensors in the order they were added, and string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub tensors: Vec<(String, Vec<usize>, Data)>,
    pub meta: BTreeMap<String, String>,
}

impl Trace {
    pub fn add(&mut self, name: &str, shape: &[usize], data: Data) {
        let len = match &data {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
        };
        debug_assert_eq!(shape.iter().product::<usize>(), len, "trace tensor {name}");
        self.tensors.push((name.to_string(), shape.to_vec(), data));
    }

    pub fn f32(&mut self, name: &str, shape: &[usize], v: Vec<f32>) {
        self.add(name, shape, Data::F32(v));
    }

    pub fn f64(&mut self, name: &str, shape: &[usize], v: Vec<f64>) {
        self.add(name, shape, Data::F64(v));
    }

    pub fn i64(&mut self, name: &str, shape: &[usize], v: Vec<i64>) {
        self.add(name, shape, Data::I64(v));
    }

    pub fn meta(&mut self, key: &str, value: impl ToString) {
        self.meta.insert(key.to_string(), value.to_string());
    }

    /// The trace as a safetensors file (the same trace, the same bytes).
    pub fn to_safetensors(&self) -> anyhow::Result<Vec<u8>> {
        let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, shape, data)| {
                let (dt, bytes) = match data {
                    Data::F32(v) => (Dtype::F32, bytemuck::cast_slice(v).to_vec()),
                    Data::F64(v) => (Dtype::F64, bytemuck::cast_slice(v).to_vec()),
                    Data::I64(v) => (Dtype::I64, bytemuck::cast_slice(v).to_vec()),
                };
                (name.as_str(), dt, shape.clone(), bytes)
            })
            .collect();
        crate::export::to_safetensors_bytes(&tensors, &self.meta)
    }

    /// A network's parameters under the names and in the layouts of the DC code's `ConvNet` (networks.py:
    /// `features` = per block conv, norm, activation, pool; `classifier`), each prefixed with `prefix`.
    pub fn convnet(&mut self, prefix: &str, p: &ConvNetParams) {
        for ((name, shape), v) in torch_tensors(&p.cfg).into_iter().zip(&p.tensors) {
            self.f32(&format!("{prefix}{name}"), &shape, v.clone());
        }
    }
}

/// (name, PyTorch shape) of each canonical ConvNet-3 tensor.
pub fn torch_tensors(cfg: &ConvNetConfig) -> Vec<(String, Vec<usize>)> {
    let convs = cfg.conv_shapes(1);
    let mut out = vec![];
    for (b, s) in convs.iter().enumerate().take(DEPTH) {
        // networks.py appends conv, norm, activation, pool per block: the conv is module 4b, the norm 4b + 1
        out.push((format!("features.{}.weight", 4 * b), vec![s.cout, s.cin, 3, 3]));
        out.push((format!("features.{}.bias", 4 * b), vec![s.cout]));
        out.push((format!("features.{}.weight", 4 * b + 1), vec![s.cout]));
        out.push((format!("features.{}.bias", 4 * b + 1), vec![s.cout]));
    }
    out.push(("classifier.weight".into(), vec![cfg.classes, cfg.embed_dim()]));
    out.push(("classifier.bias".into(), vec![cfg.classes]));
    out
}

