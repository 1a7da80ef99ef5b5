// Memory safety: dangling pointers (CWE-825/416), untrusted slice lengths (CWE-125), set_len over
// uninitialised memory and uninitialised reads (CWE-908), transmute (CWE-843), mutable statics
// and Send/Sync impls (CWE-362), forgotten guards (CWE-667), zeroed non-zeroable types (CWE-476).
use std::net::TcpStream;
use std::io::Read;

fn local_ptr() -> *const u32 {
    let x = 5u32;
    return &x as *const u32; // VULN: CWE-825
}

fn boxed_ptr() -> *const u32 {
    let b = Box::new(5u32);
    Box::into_raw(b) // SAFE: CWE-825
}

fn vec_ptr() -> *const u8 {
    let v = vec![1u8, 2, 3];
    v.as_ptr() // VULN: CWE-825
}

fn c_name() -> *const std::os::raw::c_char {
    let name = std::ffi::CString::new("hello").expect("no nul").as_ptr(); // VULN: CWE-825
    name
}

fn c_name_kept(owner: &std::ffi::CString) -> *const std::os::raw::c_char {
    owner.as_ptr() // SAFE: CWE-825
}

fn use_after_dealloc() -> u8 {
    let layout = std::alloc::Layout::new::<u8>();
    unsafe {
        let p = std::alloc::alloc(layout);
        *p = 7;
        std::alloc::dealloc(p, layout);
        *p // VULN: CWE-416
    }
}

fn use_after_free(n: usize) -> u8 {
    unsafe {
        let p = libc::malloc(n) as *mut u8;
        libc::free(p as *mut libc::c_void);
        p.read() // VULN: CWE-416
    }
}

fn free_then_null() -> bool {
    unsafe {
        let mut p = libc::malloc(8) as *mut u8;
        libc::free(p as *mut libc::c_void);
        p = std::ptr::null_mut();
        p.is_null() // SAFE: CWE-416
    }
}

fn drop_then_read(v: *mut String) -> usize {
    unsafe {
        std::ptr::drop_in_place(v);
        (*v).len() // VULN: CWE-416
    }
}

fn null_deref() -> u32 {
    let p: *const u32 = std::ptr::null();
    unsafe { *p } // VULN: CWE-476
}

fn read_packet(mut s: TcpStream, buf: &[u8]) -> Vec<u8> {
    let mut len = [0u8; 4];
    let _ = s.read_exact(&mut len);
    let n = u32::from_be_bytes(len) as usize;
    let part = unsafe { std::slice::from_raw_parts(buf.as_ptr(), n) }; // VULN: CWE-125
    part.to_vec()
}

fn read_packet_checked(mut s: TcpStream, buf: &[u8]) -> Vec<u8> {
    let mut len = [0u8; 4];
    let _ = s.read_exact(&mut len);
    let n = (u32::from_be_bytes(len) as usize).min(buf.len());
    let part = unsafe { std::slice::from_raw_parts(buf.as_ptr(), n) }; // SAFE: CWE-125
    part.to_vec()
}

fn uninit_vec(n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::with_capacity(n);
    unsafe { v.set_len(n) }; // VULN: CWE-908
    v
}

fn filled_vec(n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::with_capacity(n);
    v.resize(n, 0);
    unsafe { v.set_len(0) }; // SAFE: CWE-908
    v
}

fn uninit_read() -> String {
    unsafe { std::mem::MaybeUninit::<String>::uninit().assume_init() } // VULN: CWE-908
}

fn uninit_array() -> [std::mem::MaybeUninit<u8>; 4] {
    unsafe { std::mem::MaybeUninit::<[std::mem::MaybeUninit<u8>; 4]>::uninit().assume_init() } // SAFE: CWE-908
}

fn old_uninit() -> u64 {
    unsafe { std::mem::uninitialized() } // VULN: CWE-908
}

fn as_float(bits: u32) -> f32 {
    unsafe { std::mem::transmute::<u32, f32>(bits) } // VULN: CWE-843
}

fn as_float_safe(bits: u32) -> f32 {
    f32::from_bits(bits) // SAFE: CWE-843
}

static mut COUNTER: u32 = 0; // VULN: CWE-362
static TOTAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0); // SAFE: CWE-362

struct Handle(*mut u8);
unsafe impl Send for Handle {} // VULN: CWE-362
struct Shared(*mut u8);
// SAFETY: the pointer is owned and only touched behind the mutex in `Pool`.
unsafe impl Sync for Shared {} // SAFE: CWE-362

fn leak_guard(m: &std::sync::Mutex<u32>) {
    let guard = m.lock().expect("lock");
    std::mem::forget(guard); // VULN: CWE-667
}

fn leak_buffer() {
    let v = vec![1u8; 16];
    std::mem::forget(v); // SAFE: CWE-667
}

fn zeroed_ref() -> &'static u8 {
    let r: &'static u8 = unsafe { std::mem::zeroed() }; // VULN: CWE-476
    r
}

fn zeroed_plain() -> [u32; 4] {
    let a: [u32; 4] = unsafe { std::mem::zeroed() }; // SAFE: CWE-476
    a
}
