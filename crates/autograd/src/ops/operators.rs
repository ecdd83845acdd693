//! `+ − × ÷` and unary minus for variables, between variables and with scalars on either side.
//! They panic on shapes that do not broadcast, with the same message as the `try_` forms.

use std::ops::{Add, Div, Mul, Neg, Sub};

use tensor::Element;

use crate::var::Var;

macro_rules! var_operator {
    ($trait:ident, $method:ident) => {
        impl<T: Element> $trait<&Var<T>> for &Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                Var::$method(self, rhs)
            }
        }
        impl<T: Element> $trait<Var<T>> for Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Var<T> {
                Var::$method(&self, &rhs)
            }
        }
        impl<T: Element> $trait<&Var<T>> for Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                Var::$method(&self, rhs)
            }
        }
        impl<T: Element> $trait<Var<T>> for &Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Var<T> {
                Var::$method(self, &rhs)
            }
        }
    };
}

var_operator!(Add, add);
var_operator!(Sub, sub);
var_operator!(Mul, mul);
var_operator!(Div, div);

impl<T: Element> Add<T> for &Var<T> {
    type Output = Var<T>;
    #[track_caller]
    fn add(self, rhs: T) -> Var<T> {
        self.add_scalar(rhs)
    }
}

impl<T: Element> Sub<T> for &Var<T> {
    type Output = Var<T>;
    #[track_caller]
    fn sub(self, rhs: T) -> Var<T> {
        self.add_scalar(-rhs)
    }
}

impl<T: Element> Mul<T> for &Var<T> {
    type Output = Var<T>;
    #[track_caller]
    fn mul(self, rhs: T) -> Var<T> {
        self.mul_scalar(rhs)
    }
}

impl<T: Element> Div<T> for &Var<T> {
    type Output = Var<T>;
    #[track_caller]
    fn div(self, rhs: T) -> Var<T> {
        self.mul_scalar(T::one() / rhs)
    }
}

impl<T: Element> Neg for &Var<T> {
    type Output = Var<T>;
    #[track_caller]
    fn neg(self) -> Var<T> {
        Var::neg(self)
    }
}

impl<T: Element> Neg for Var<T> {
    type Output = Var<T>;
    #[track_caller]
    fn neg(self) -> Var<T> {
        Var::neg(&self)
    }
}

macro_rules! scalar_on_left {
    ($($float:ty),*) => {$(
        impl Add<&Var<$float>> for $float {
            type Output = Var<$float>;
            #[track_caller]
            fn add(self, rhs: &Var<$float>) -> Var<$float> {
                rhs.add_scalar(self)
            }
        }
        impl Sub<&Var<$float>> for $float {
            type Output = Var<$float>;
            #[track_caller]
            fn sub(self, rhs: &Var<$float>) -> Var<$float> {
                rhs.neg().add_scalar(self)
            }
        }
        impl Mul<&Var<$float>> for $float {
            type Output = Var<$float>;
            #[track_caller]
            fn mul(self, rhs: &Var<$float>) -> Var<$float> {
                rhs.mul_scalar(self)
            }
        }
        impl Div<&Var<$float>> for $float {
            type Output = Var<$float>;
            #[track_caller]
            fn div(self, rhs: &Var<$float>) -> Var<$float> {
                rhs.recip().mul_scalar(self)
            }
        }
    )*};
}

scalar_on_left!(f32, f64);
