// tfjs-core alone registers no gradient functions; tfjs-layers registers all of them on import.
import '@tensorflow/tfjs-layers';
