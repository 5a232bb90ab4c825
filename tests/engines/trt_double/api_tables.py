"""What the TEST DOUBLE exposes, per mode: a small subset of each real API, name for name.

``TRT["8.2"]`` is the binding-index generation (must exist in TensorRT 8.0.1 *and* 8.2.1, the
Jetson Nano's two releases); ``TRT["10"]`` the tensor-name generation (must exist in 10.16);
``TRT["8.5"]`` (JetPack 5.1's 8.5.2) has both: no name list of 8.5 is bundled, so each of its names
must exist in 8.2 or in 10.16, and the table leaves out what 8.5 lacks (``get_tensor_profile_shape``
came in 8.6, INT64 in 9.0, the progress monitor in 8.6/10).
``PYCUDA`` must exist in pycuda 2022.1 (the newest for Python 3.6). ``CUDART`` lists the
cuda-python runtime names the double offers; no reference list is bundled for cuda-python, so
they were checked by hand (import + hasattr, CPU only) in the wheels of cuda-python 11.8.3
(``cuda.cudart``) and cuda-bindings 12.9.0 (``cuda.cudart`` and ``cuda.bindings.runtime``).
``tests/engines/test_trt_api_names.py`` checks every table against ``shared/trt-api``.
Keys are API class names ("" = the module itself); values are member names.
"""

_TRT_COMMON = {
    "": ["__version__", "Logger", "ILogger", "Builder", "Runtime", "OnnxParser", "ParserError",
         "ErrorCode", "NetworkDefinitionCreationFlag", "BuilderFlag", "LayerType", "DataType",
         "CalibrationAlgoType", "IInt8Calibrator", "IInt8EntropyCalibrator2",
         "IInt8MinMaxCalibrator", "IBuilderConfig", "INetworkDefinition", "ITensor", "ILayer",
         "IOptimizationProfile", "IHostMemory", "ICudaEngine", "IExecutionContext", "nptype",
         "volume"],
    "Logger": ["__init__", "log", "min_severity", "Severity", "INTERNAL_ERROR", "ERROR",
               "WARNING", "INFO", "VERBOSE"],
    "Logger.Severity": ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"],
    "ILogger": ["__init__", "log"],
    "Builder": ["__init__", "create_network", "create_builder_config",
                "create_optimization_profile", "build_serialized_network",
                "platform_has_fast_fp16", "platform_has_fast_int8"],
    "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH"],
    "INetworkDefinition": ["num_inputs", "num_outputs", "get_input", "get_output", "num_layers",
                           "get_layer"],
    "ITensor": ["name", "shape", "dtype", "is_network_input", "is_network_output"],
    "ILayer": ["name", "type", "precision"],
    "OnnxParser": ["__init__", "parse", "parse_from_file", "num_errors", "get_error",
                   "clear_errors"],
    "ParserError": ["code", "desc", "node"],
    "ErrorCode": ["SUCCESS", "INTERNAL_ERROR", "INVALID_VALUE", "INVALID_GRAPH", "INVALID_NODE",
                  "UNSUPPORTED_GRAPH", "UNSUPPORTED_NODE", "MODEL_DESERIALIZE_FAILED"],
    "IBuilderConfig": ["set_flag", "get_flag", "clear_flag", "add_optimization_profile",
                       "num_optimization_profiles", "int8_calibrator", "set_calibration_profile",
                       "get_calibration_profile"],
    "IOptimizationProfile": ["set_shape", "get_shape"],
    "BuilderFlag": ["FP16", "INT8", "GPU_FALLBACK", "REFIT", "TF32"],
    "LayerType": ["CONVOLUTION", "ACTIVATION", "POOLING", "SHUFFLE", "MATRIX_MULTIPLY",
                  "ELEMENTWISE", "REDUCE", "SOFTMAX", "TOPK", "IDENTITY", "CONSTANT", "QUANTIZE",
                  "DEQUANTIZE"],
    "DataType": ["FLOAT", "HALF", "INT8", "INT32", "BOOL"],
    "CalibrationAlgoType": ["ENTROPY_CALIBRATION_2", "MINMAX_CALIBRATION"],
    "IInt8Calibrator": ["__init__", "get_algorithm", "get_batch", "get_batch_size",
                        "read_calibration_cache", "write_calibration_cache"],
    "IInt8EntropyCalibrator2": ["__init__", "get_algorithm", "get_batch", "get_batch_size",
                                "read_calibration_cache", "write_calibration_cache"],
    "IInt8MinMaxCalibrator": ["__init__", "get_algorithm", "get_batch", "get_batch_size",
                              "read_calibration_cache", "write_calibration_cache"],
    "IHostMemory": ["nbytes", "dtype"],
    "Runtime": ["__init__", "deserialize_cuda_engine"],
    "ICudaEngine": ["create_execution_context", "num_optimization_profiles", "name",
                    "serialize"],
    "IExecutionContext": ["all_binding_shapes_specified", "engine", "execute_v2",
                          "set_optimization_profile_async", "active_optimization_profile"],
}

_TRT_BINDINGS = {  # 8.0 / 8.2 only (gone in 10)
    "BuilderFlag": ["STRICT_TYPES"],
    "IBuilderConfig": ["max_workspace_size"],
    "ICudaEngine": ["num_bindings", "get_binding_name", "get_binding_index", "binding_is_input",
                    "get_binding_shape", "get_binding_dtype", "get_profile_shape",
                    "max_batch_size"],
    "IExecutionContext": ["set_binding_shape", "get_binding_shape", "execute_async_v2"],
}

_TRT_TENSORS = {  # 10.x only (the tensor-name API came in 8.5)
    "BuilderFlag": ["OBEY_PRECISION_CONSTRAINTS"],
    "MemoryPoolType": ["WORKSPACE"],
    "TensorIOMode": ["NONE", "INPUT", "OUTPUT"],
    "IBuilderConfig": ["set_memory_pool_limit", "get_memory_pool_limit"],
    "ICudaEngine": ["num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape",
                    "get_tensor_dtype", "get_tensor_profile_shape"],
    "IExecutionContext": ["set_input_shape", "get_tensor_shape", "set_tensor_address",
                          "get_tensor_address", "execute_async_v3"],
    "DataType": ["INT64", "UINT8"],
    "": ["MemoryPoolType", "TensorIOMode", "IProgressMonitor"],
    "IProgressMonitor": ["__init__", "phase_start", "step_complete", "phase_finish"],
}
_TRT_TENSORS["IBuilderConfig"] = _TRT_TENSORS["IBuilderConfig"] + ["progress_monitor"]

_TRT_85_LACKS = {  # what 8.5.2 does not have of the 10.x tensor-name additions
    "": ["IProgressMonitor"], "IProgressMonitor": None, "DataType": ["INT64"],
    "ICudaEngine": ["get_tensor_profile_shape"], "IBuilderConfig": ["progress_monitor"],
}


def _merge(*tables):
    merged = {}
    for table in tables:
        for key, names in table.items():
            merged.setdefault(key, set()).update(names)
    return {key: frozenset(names) for key, names in merged.items()}


def _without(table, lacks):
    result = {}
    for key, names in table.items():
        if key in lacks and lacks[key] is None:
            continue
        result[key] = frozenset(names - set(lacks.get(key) or ()))
    return result


TRT = {"8.2": _merge(_TRT_COMMON, _TRT_BINDINGS),
       "8.5": _without(_merge(_TRT_COMMON, _TRT_BINDINGS, _TRT_TENSORS), _TRT_85_LACKS),
       "10": _merge(_TRT_COMMON, _TRT_TENSORS)}

# TensorRT version strings the double reports by default, per mode
TRT_VERSIONS = {"8.2": "8.2.1.8", "8.5": "8.5.2.2", "10": "10.16.1.11"}

PYCUDA = _merge({
    "driver": ["init", "Device", "Context", "Stream", "DeviceAllocation",
               "PagelockedHostAllocation", "pagelocked_empty", "mem_alloc", "memcpy_htod",
               "memcpy_dtoh", "memcpy_htod_async", "memcpy_dtoh_async", "get_version",
               "get_driver_version", "Error", "LogicError"],
    "driver.Device": ["__init__", "count", "name", "compute_capability", "total_memory",
                      "make_context", "retain_primary_context"],
    "driver.Context": ["push", "pop", "detach", "synchronize", "get_current", "get_device"],
    "driver.Stream": ["__init__", "handle", "synchronize", "is_done"],
    "driver.DeviceAllocation": ["__int__", "__index__", "free"],
    "driver.PagelockedHostAllocation": ["free"],
    "autoinit": ["context", "device"],
})

CUDART = _merge({
    "": ["cudaError_t", "cudaMemcpyKind", "cudaDeviceProp", "cudaStream_t", "cudaGetDeviceCount",
         "cudaGetDevice", "cudaSetDevice", "cudaGetDeviceProperties", "cudaMalloc", "cudaFree",
         "cudaMallocHost", "cudaFreeHost", "cudaHostRegister", "cudaHostUnregister",
         "cudaHostRegisterDefault", "cudaMemcpy", "cudaMemcpyAsync", "cudaStreamCreate",
         "cudaStreamSynchronize", "cudaStreamDestroy", "cudaGetErrorString", "cudaGetErrorName"],
    "cudaError_t": ["cudaSuccess", "cudaErrorInvalidValue", "cudaErrorMemoryAllocation",
                    "cudaErrorInvalidDevice", "cudaErrorInvalidDevicePointer",
                    "cudaErrorInvalidResourceHandle", "cudaErrorHostMemoryNotRegistered"],
    "cudaMemcpyKind": ["cudaMemcpyHostToHost", "cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost",
                       "cudaMemcpyDeviceToDevice", "cudaMemcpyDefault"],
    "cudaDeviceProp": ["name", "major", "minor", "totalGlobalMem"],
    "cudaStream_t": ["__int__", "getPtr"],
})
